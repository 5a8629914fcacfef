"""Locust's distributed mode through scalectl: `--master` here, `--worker` processes that
connect to it (on one machine in the test, on many in real use)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scalectl.errors import ExitCode
from scalectl.stack.process import free_port
from tests.conftest import Result, fixture_path
from tests.loadtest.server import no_locust_left, serve

Cli = Callable[..., Result]
KNOWN = fixture_path("locust", "known.py")
SCALECTL = Path(sys.executable).parent / "scalectl"
pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve() as url:
        yield url


def test_master_gathers_the_measurements_of_its_workers(
    cli: Cli, tmp_path: Path, server: str
) -> None:
    port = free_port()
    worker = [str(SCALECTL), "loadtest", str(KNOWN), "--worker", "--master-port", str(port)]
    workers = [
        subprocess.Popen(
            [*worker, "-t", "30s", "--processes", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        result = cli(
            "loadtest", KNOWN, "-H", server, "--master", "--expect-workers", "2",
            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "-u", "10", "-r", "10", "-t", "6s", "--rate", "50", "--report-dir", tmp_path,
        )  # fmt: skip
        logs = [w.communicate(timeout=60)[0] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert result.code == 0, result.stdout + result.stderr + "".join(logs)
    assert "a master for 2 worker(s)" in result.stdout
    assert all(w.returncode == 0 for w in workers), logs
    report = json.loads((tmp_path / "report.json").read_text())
    generator = report["generator"]
    # Both workers reported their own CPU demand (the master cannot see another machine's).
    assert {"worker-0", "worker-1"} <= set(generator["demand_percent_median"]), generator
    assert generator["processes"] == 2
    # The open model's rate travels from the master to its workers: 5/s per user.
    assert report["load_model"]["rate_per_user"] == pytest.approx(5.0)
    assert generator["achieved_rps"] == pytest.approx(50, rel=0.1)
    assert report["total"]["requests"] >= 150
    flaky = {e["name"]: e for e in report["endpoints"]}["/flaky"]
    assert flaky["error_rate"] == pytest.approx(0.10, abs=0.03)
    assert no_locust_left(server, str(port))


def test_worker_refuses_what_belongs_to_the_master(cli: Cli) -> None:
    result = cli("loadtest", KNOWN, "--worker", "-u", "5", "--rate", "3", "-t", "3s")
    assert result.code == ExitCode.BAD_INPUT
    assert "--worker takes --users, --rate from its master" in result.stderr
    late = cli("loadtest", KNOWN, "--worker", "--max-late-share", "0.05", "-t", "3s")
    assert late.code == ExitCode.BAD_INPUT
    assert "--worker takes --max-late-share from its master" in late.stderr
    both = cli("loadtest", KNOWN, "--worker", "--master", "-t", "3s")
    assert both.code == ExitCode.BAD_INPUT and "not both" in both.stderr
