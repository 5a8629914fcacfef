"""`checklist --target URL --prometheus URL` against a deployment "elsewhere": the reference
stack reached only through its public nginx URL, and a second real Prometheus the stack
did not start, loading the plan's rules, asked only through its HTTP API.

That Prometheus scrapes each app replica as the rendered production config does (one
target per replica: through the balancer a scrape would reach a random replica and mix
their counters), plus the public URL's /metrics as a job the plan does not have."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from scalectl.stack.process import free_port, wait_for
from scalectl.stack.state import load
from tests.checklist.conftest import send_traffic
from tests.conftest import Result

Cli = Callable[..., Result]
pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs prometheus"),
]


def _hostport(url: str | None) -> str:
    assert url
    return httpx.URL(url).netloc.decode()


@pytest.fixture(scope="module")
def deployment(stack: tuple[Path, Path]) -> Iterator[tuple[Path, str, str]]:
    """(plan, public URL, Prometheus URL) of the stack as if it were deployed elsewhere."""
    plan, state_dir = stack
    state = load(state_dir)
    assert state is not None
    public = state.urls["app"]
    root = Path(tempfile.mkdtemp(prefix="scalectl-remote-prom-"))
    for rules in (state_dir / "rendered" / "prometheus").glob("*.rules.yml"):
        shutil.copy(rules, root / rules.name)
    apps = [_hostport(m.url) for m in state.members if m.kind == "app"]
    workers = [_hostport(m.health_url) for m in state.members if m.kind == "worker"]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": sorted(p.name for p in root.glob("*.rules.yml")),
        "scrape_configs": [
            {"job_name": "api", "static_configs": [{"targets": apps}]},
            {"job_name": "jobs", "static_configs": [{"targets": workers}]},
            {"job_name": "public", "static_configs": [{"targets": [_hostport(public)]}]},
        ],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def scraped() -> bool:
            try:
                targets = httpx.get(f"{url}/api/v1/targets", timeout=2).json()
            except (httpx.HTTPError, ValueError):
                return False
            active = targets["data"]["activeTargets"]
            return len(active) == len(apps) + len(workers) + 1 and all(
                t["health"] == "up" for t in active
            )

        assert wait_for(scraped, timeout=30, interval=0.5), (root / "prometheus.log").read_text()
        # Traffic the rate() windows of the SLO queries see, then two more scrapes.
        send_traffic(state_dir, rounds=40, posts=False)
        wait_for(lambda: False, timeout=2.5, interval=0.5)
        yield plan, public, url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _items(result: Result) -> dict[str, dict[str, object]]:
    assert result.stdout, result.stderr
    return {i["id"]: i for i in json.loads(result.stdout)["items"]}


def test_post_checklist_passes_against_the_deployment(
    cli: Cli, deployment: tuple[Path, str, str], tmp_path: Path
) -> None:
    plan, public, prometheus = deployment
    answers = tmp_path / "answers.yaml"
    answers.write_text("autoscaling-working: {answer: yes, by: ci}\n")
    result = cli(
        "checklist", "post", "--plan", plan, "--target", public, "--prometheus", prometheus,
        "--state-dir", tmp_path / "no-stack", "--answers", answers,
        "--progress-dir", tmp_path, "--json",
    )  # fmt: skip
    got = _items(result)
    assert result.code == 0, json.dumps(got, indent=1)
    monitoring = got["monitoring-active"]["evidence"]
    assert monitoring == [
        f"Prometheus {prometheus} ready",
        "targets of the plan's jobs: api 2 of 2 up, jobs 1 of 1 up (1 other targets)",
        monitoring[2],
        "every alert the plan renders is loaded (11)",
    ]
    slo = got["slo-within-targets"]["evidence"]
    assert isinstance(slo, list)
    assert slo[0].startswith("ApiHighErrorRate: 0.00% over 5m vs SLO 1.00%: ok"), slo
    assert any(line.startswith("ApiLatencyP95High: ") for line in slo), slo
    exposed = got["alerted-series-exposed"]["evidence"]
    assert exposed == [
        f"api {public}/metrics: 3 of 3 series exposed",
        "workers (jobs) are not behind --target: the prometheus item checks they are scraped",
    ]
    # source: stack is the plan's render here: no local stack is asked.
    assert (
        "promtool test rules prometheus/rules.test.yml: ok" in got["alert-thresholds"]["evidence"]
    )


def test_items_that_need_the_local_stack_are_skipped_never_passed(
    cli: Cli, deployment: tuple[Path, str, str], tmp_path: Path
) -> None:
    plan, public, prometheus = deployment
    result = cli(
        "checklist", "deploy", "--plan", plan, "--target", public, "--prometheus", prometheus,
        "--progress-dir", tmp_path, "--json",
    )  # fmt: skip
    got = _items(result)
    assert result.code == 1, json.dumps(got, indent=1)
    for drill in ("graceful-shutdown", "rolling-restart"):
        assert got[drill]["status"] == "skipped"
        assert got[drill]["evidence"] == ["skipped: needs the local stack"]
    assert got["health-checks"]["status"] == "pass", got["health-checks"]
    data = json.loads(result.stdout)
    assert data["skipped"] == 2 and data["required_failed"] == [
        "graceful-shutdown",
        "rolling-restart",
    ]
    assert "incomplete: 2 required items not passed" in result.stderr


def test_a_wrong_target_fails(cli: Cli, deployment: tuple[Path, str, str], tmp_path: Path) -> None:
    plan, _, prometheus = deployment
    wrong = f"http://127.0.0.1:{free_port()}"
    checklist = tmp_path / "live.yaml"
    checklist.write_text(
        "version: 1\nname: live\ntitle: Live\nitems:\n"
        "  - {id: health, title: Health, verify: {kind: health}}\n"
        "  - {id: exposed, title: Exposed, verify: {kind: metrics-exposed}}\n"
    )
    result = cli(
        "checklist", checklist, "--plan", plan, "--target", wrong, "--prometheus", prometheus,
        "--progress-dir", tmp_path, "--json",
    )  # fmt: skip
    got = _items(result)
    assert result.code == 1
    assert got["health"]["status"] == "fail"
    assert all("connection refused" in str(line) for line in got["health"]["evidence"])
    assert got["exposed"]["status"] == "fail"
