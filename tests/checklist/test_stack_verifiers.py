"""The stack-facing verifiers against one real local stack (PostgreSQL, Redis, gunicorn,
Dramatiq, nginx, Prometheus), started once for this module.

The shipped pre, post and deploy checklists run end to end first (the passing case of
every stack verifier; deploy last, as it restarts an instance that Prometheus would then
see down until its next scrape), then each verifier's failing case; the tests that break the stack
(a stopped Redis, a killed instance) come last and restore what they broke."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from scalectl.checklist.verifiers import Context
from scalectl.stack.process import free_port, wait_for
from scalectl.stack.run import restart_member
from scalectl.stack.state import load
from tests.checklist.conftest import check, write_report
from tests.conftest import ROOT, Result
from tests.stack.conftest import local_plan

Cli = Callable[..., Result]
pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Path, Path]]:
    from scalectl.cli import run

    # Not under pytest's basetemp: every pytest session starting on this machine chmods
    # /tmp/pytest-of-<user> to 0700, which locks PostgreSQL's unprivileged account out of
    # a data directory below it (docs/stack.md: it needs o+x on each parent).
    root = Path(tempfile.mkdtemp(prefix="scalectl-checklist-stack-"))
    plan, state_dir = local_plan(root), root / "state"
    try:
        code = run(
            ["stack", "up", "--plan", str(plan), "--state-dir", str(state_dir), "--timeout", "90"]
        )
        assert code == 0, "stack up failed; see the output above"
        send_traffic(state_dir)
        yield plan, state_dir
    finally:
        run(["stack", "down", "--state-dir", str(state_dir)])
        shutil.rmtree(root, ignore_errors=True)


def send_traffic(state_dir: Path) -> None:
    """Light real traffic straight to each instance, so the SLO check has data to judge."""
    state = load(state_dir)
    assert state is not None
    # A premium key: an anonymous caller is held to the free tier's 20 rps.
    headers = {"X-API-Tier": "premium", "X-API-Key": "checklist-tests"}
    for member in state.members:
        if member.kind != "app":
            continue
        with httpx.Client(base_url=str(member.url), timeout=5, headers=headers) as client:
            for i in range(80):
                assert client.get("/api/stats").status_code == 200
                if i % 8 == 0:
                    created = client.post(
                        "/api/submissions",
                        json={"user_id": i + 1, "title": "CV", "content": "Python, SQL"},
                    )
                    assert created.status_code == 202, created.text


def items(result: Result) -> dict[str, dict[str, object]]:
    assert result.stdout, result.stderr
    return {i["id"]: i for i in json.loads(result.stdout)["items"]}


def test_pre_checklist_passes_against_the_stack(
    cli: Cli, stack: tuple[Path, Path], tmp_path: Path
) -> None:
    plan, state_dir = stack
    write_report(tmp_path / "report")
    answers = tmp_path / "answers.yaml"
    answers.write_text("benchmarks-established: {answer: yes, by: ci, note: bench/README.md}\n")
    result = cli(
        "checklist", "pre", "--plan", plan, "--state-dir", state_dir,
        "--report-dir", tmp_path / "report", "--answers", answers,
        "--progress-dir", tmp_path / "progress", "--json",
    )  # fmt: skip
    got = items(result)
    assert result.code == 0, json.dumps(got, indent=1)
    backup = got["backup-recovery"]["evidence"]
    assert isinstance(backup, list)
    assert re.fullmatch(r"pg_dump refapp: 4 tables, \d+ rows, \d+ KiB in [\d.]+s", backup[1])
    assert backup[2].startswith("pg_restore into scratch database scalectl_restore_")
    assert re.fullmatch(
        r"row counts match in all 4 tables: public.analyses \d+, public.jobs \d+, "
        r"public.reports \d+, public.submissions 20",
        backup[3],
    )


def test_post_checklist_passes_against_the_stack(
    cli: Cli, stack: tuple[Path, Path], tmp_path: Path
) -> None:
    _, state_dir = stack
    answers = tmp_path / "answers.yaml"
    answers.write_text("autoscaling-working: {answer: yes, by: ci}\n")
    result = cli(
        "checklist", "post", "--state-dir", state_dir, "--answers", answers,
        "--progress-dir", tmp_path, "--markdown", tmp_path / "post.md", "--json",
    )  # fmt: skip
    got = items(result)
    assert result.code == 0, json.dumps(got, indent=1)
    monitoring = got["monitoring-active"]["evidence"]
    assert isinstance(monitoring, list)
    assert monitoring[1] == "targets: 3 of 3 up (api 2, jobs 1)"
    assert monitoring[-1] == "every rendered alert is loaded (11)"
    exposed = got["alerted-series-exposed"]["evidence"]
    assert isinstance(exposed, list)
    assert exposed[0] == (
        "6 series names used by 2 rule file(s): http_request_duration_seconds_bucket, "
        "http_requests_total, process_resident_memory_bytes, queue_dead_letters, queue_depth, "
        "queue_oldest_job_age_seconds"
    )
    slo = got["slo-within-targets"]["evidence"]
    assert isinstance(slo, list)
    assert slo[1].startswith("error rate 0.00% (0 5xx) vs SLO 1.00%: ok")
    assert (tmp_path / "post.md").read_text().startswith("## ✅ scalectl checklist post: complete")


def test_deploy_checklist_passes_against_the_stack(
    cli: Cli, stack: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, state_dir = stack
    monkeypatch.chdir(ROOT)  # docs/rollback.md is this project's
    result = cli(
        "checklist", "deploy", "--plan", plan, "--state-dir", state_dir,
        "--progress-dir", tmp_path, "--json",
    )  # fmt: skip
    got = items(result)
    assert result.code == 0, json.dumps(got, indent=1)
    shutdown = got["graceful-shutdown"]["evidence"]
    assert isinstance(shutdown, list)
    assert "failed requests: 0" in shutdown
    assert shutdown[-1].startswith("restarted api-2 as pid ")
    health = got["health-checks"]["evidence"]
    assert isinstance(health, list) and any("api-2" in line for line in health)
    # The restarted instance is recorded, alive and serving.
    state = load(state_dir)
    assert state is not None
    api2 = state.member("api-2")
    assert api2 is not None and psutil.pid_exists(api2.pid)
    assert httpx.get(f"{api2.url}/health/ready", timeout=5).status_code == 200


# --- the failing case of each stack verifier -------------------------------------------


def test_prometheus_not_reachable_fails() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = check(f"{{kind: prometheus, url: '{url}'}}", Context())
    assert result.status == "fail"
    assert result.evidence == (f"{url}: ConnectError: [Errno 111] Connection refused",)


def test_prometheus_elsewhere_is_refused() -> None:
    result = check("{kind: prometheus, url: 'http://example.com:9090'}", Context())
    assert result.evidence == (
        "http://example.com:9090: not a loopback address; checklists only probe this machine",
    )


def test_a_series_no_instance_exposes_fails(stack: tuple[Path, Path], tmp_path: Path) -> None:
    _, state_dir = stack
    rules = tmp_path / "extra.rules.yml"
    rules.write_text(
        "groups:\n  - name: extra\n    rules:\n"
        "      - alert: Made\n        expr: rate(payments_failed_total[5m]) > 0\n"
    )
    result = check(f"{{kind: metrics-exposed, rules: [{rules}]}}", Context(state_dir=state_dir))
    assert result.status == "fail"
    assert result.evidence[0] == "1 series names used by 1 rule file(s): payments_failed_total"
    assert result.evidence[-1] == ("payments_failed_total (used by Made) missing on api-1, api-2")


def test_slo_beyond_target_fails(stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    result = check(
        "{kind: slo-live, window: 0.5s, p95_ms: 0.1, min_requests: 20}",
        Context(state_dir=state_dir),
    )
    assert result.status == "fail"
    assert (
        result.evidence[0]
        .split(" requests")[1]
        .startswith(" on 2 instance(s) since the instances started")
    )
    assert result.evidence[-1].startswith("p95 ≈ ") and "exceeds 0.1 ms" in result.evidence[-1]


def test_too_little_traffic_fails(stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    result = check(
        "{kind: slo-live, window: 0.5s, min_requests: 100000}", Context(state_dir=state_dir)
    )
    assert result.status == "fail"
    assert result.evidence[-1].startswith("too little traffic to judge: ")


def test_backup_of_a_missing_database_fails(stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    result = check("{kind: backup-restore, database: nope}", Context(state_dir=state_dir))
    assert result.status == "fail"
    assert result.evidence[0].startswith("pg_dump (PostgreSQL) ")
    assert result.evidence[1].startswith("cannot connect to nope: ")
    assert 'database "nope" does not exist' in result.evidence[1]


def test_no_stack_fails_the_stack_items(tmp_path: Path) -> None:
    for kind in ("backup-restore", "graceful-shutdown", "metrics-exposed", "slo-live"):
        result = check(f"{{kind: {kind}}}", Context(state_dir=tmp_path))
        assert result.evidence == (
            f"no stack is running in {tmp_path} (start one: scalectl stack up)",
        ), kind
    health = check("{kind: health}", Context(state_dir=tmp_path))
    assert health.status == "fail"
    assert "no stack is running here" in health.evidence[0]


# --- breaking the stack: last, and restored -------------------------------------------


def test_a_stopped_redis_fails_strict_health(stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    state = load(state_dir)
    assert state is not None
    redis = state.member("redis")
    assert redis is not None
    os.kill(redis.pid, signal.SIGKILL)
    psutil.Process(redis.pid).wait(5)
    result = check("{kind: health, strict: true}", Context(state_dir=state_dir))
    assert result.status == "fail", result.evidence
    assert any("warn" in line or "fail" in line for line in result.evidence)

    restart_member(state_dir, "redis")
    # The app reconnects on its own once its breaker lets a probe through (bounded wait).
    assert wait_for(
        lambda: (
            check("{kind: health, strict: true}", Context(state_dir=state_dir)).status == "pass"
        ),
        timeout=45,
        interval=1,
    )


def test_a_killed_instance_fails_health_shutdown_and_metrics(stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    state = load(state_dir)
    assert state is not None
    victim = state.member("api-1")
    assert victim is not None
    os.killpg(victim.pid, signal.SIGKILL)
    psutil.Process(victim.pid).wait(5)
    ctx = Context(state_dir=state_dir)

    health = check("{kind: health}", ctx)
    assert health.status == "fail"
    assert any(line.startswith("api-1") and "fail" in line for line in health.evidence)
    shutdown = check("{kind: graceful-shutdown, member: api-1}", ctx)
    assert shutdown.evidence == (
        f"api-1 is not running (pid {victim.pid} is gone): nothing to shut down",
    )
    metrics = check("{kind: metrics-exposed}", ctx)
    assert metrics.status == "fail"
    assert "api-1: http://127.0.0.1:" in "\n".join(metrics.evidence)

    fresh = restart_member(state_dir, "api-1")
    assert fresh.pid != victim.pid
    assert wait_for(lambda: check("{kind: health}", ctx).status == "pass", timeout=30, interval=1)
