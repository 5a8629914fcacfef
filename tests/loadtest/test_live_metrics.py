"""`scalectl loadtest --metrics-port`: the Locust master serves its counters and HDR latency
quantiles on /metrics while the run goes on; promtool accepts the exposition and a real
Prometheus scrapes it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

from scalectl.exposition import parse
from scalectl.plan import prepare, render_files
from scalectl.stack.process import free_port, wait_for
from tests.conftest import EXAMPLES, fixture_path
from tests.loadtest.server import serve

KNOWN = fixture_path("locust", "known.py")
pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs prometheus"),
]


def _scrape(url: str) -> str | None:
    try:
        answer = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return answer.text if answer.status_code == 200 else None


def _value(text: str, series: str, **labels: str) -> float | None:
    for sample in parse(text).samples:
        if sample.name == series and all(sample.label_map.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    return None


def test_live_metrics_are_served_and_scraped(tmp_path: Path) -> None:
    port, prom_port = free_port(), free_port()
    metrics = f"http://127.0.0.1:{port}/metrics"
    root = Path(tempfile.mkdtemp(prefix="scalectl-live-prom-"))
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": "loadtest", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
        ],
    }
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus = subprocess.Popen(
        [
            "prometheus", f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    exe = Path(sys.executable).parent / "scalectl"
    try:
        with serve() as url:
            run = subprocess.Popen(
                [
                    str(exe), "loadtest", str(KNOWN), "-H", url, "-u", "4", "-r", "4",
                    "-t", "20s", "--processes", "2", "--metrics-port", str(port),
                    "--report-dir", str(tmp_path / "report"),
                ],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:

                def known(text: str | None) -> float:
                    value = text and _value(text, "scalectl_loadtest_requests_total", name="/known")
                    return value or 0.0

                assert wait_for(lambda: known(_scrape(metrics)) > 0, timeout=40, interval=0.5)
                first = _scrape(metrics)
                assert first is not None
                # The known server sleeps 10..100 ms: the window's p95 is near 100 ms.
                p95 = _value(
                    first, "scalectl_loadtest_response_time_seconds",
                    name="Aggregated", quantile="0.95",
                )  # fmt: skip
                assert p95 is not None and 0.05 < p95 < 0.5, first
                assert _value(first, "scalectl_loadtest_users") == 4
                assert _value(first, "scalectl_loadtest_failures_total", name="/flaky") is not None
                lint = subprocess.run(
                    ["promtool", "check", "metrics"], input=first, capture_output=True, text=True
                )
                assert lint.returncode == 0, lint.stdout + lint.stderr

                def in_prometheus() -> float | None:
                    try:
                        data = httpx.get(
                            f"http://127.0.0.1:{prom_port}/api/v1/query",
                            params={"query": 'scalectl_loadtest_requests_total{name="/known"}'},
                            timeout=2,
                        ).json()["data"]["result"]
                    except (httpx.HTTPError, ValueError, KeyError):
                        return None
                    return float(data[0]["value"][1]) if data else None

                assert wait_for(in_prometheus, timeout=30, interval=0.5), "Prometheus saw none"
                time.sleep(3)  # more scrapes: rate() needs two samples
                # Every query of the load-test dashboard `scalectl plan` renders is answered
                # from these series (Grafana's variables filled in as it would).
                files = render_files(prepare(EXAMPLES / "reference-app.yaml", "local"))
                dashboard = json.loads(files["grafana/loadtest-dashboard.json"])
                for panel in dashboard["panels"]:
                    for target in panel["targets"]:
                        expr = target["expr"].replace("$job", "loadtest")
                        expr = expr.replace("$__rate_interval", "1m")
                        answer = httpx.get(
                            f"http://127.0.0.1:{prom_port}/api/v1/query",
                            params={"query": expr},
                            timeout=5,
                        ).json()
                        assert answer["status"] == "success", (expr, answer)
                        if not panel["title"].startswith("Open model"):  # closed model here
                            assert answer["data"]["result"], (panel["title"], expr)
                grew = wait_for(
                    lambda: known(_scrape(metrics)) > known(first), timeout=20, interval=0.5
                )
                assert grew, "the counter did not grow"
            finally:
                _, err = run.communicate(timeout=120)
            assert run.returncode in (0, 1), err
            assert _scrape(metrics) is None  # the server stops with the run
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=20)
        shutil.rmtree(root, ignore_errors=True)
