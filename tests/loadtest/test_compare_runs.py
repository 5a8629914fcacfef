"""`scalectl loadtest compare` and `history` on reports of real runs: three short runs against
the loopback test server, made once for the module and side by side (so they share the
machine's load): BASE, AGAIN (the same server and load) and SLOW (40 ms added to every
response). Each run is then checked several ways."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scalectl.errors import ExitCode
from tests.conftest import Result, fixture_path
from tests.loadtest.server import no_locust_left, serve

Cli = Callable[..., Result]
NINE = fixture_path("locust", "nine.py")
WORK = "GET /work"
SLOW_MS = 40
pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Report dirs of three 8 s runs made at the same time: base, again and slow."""
    root = tmp_path_factory.mktemp("compare-runs")
    runs = {"base": 0, "again": 0, "slow": SLOW_MS}
    with serve() as url:
        procs = {}
        for name, plus in runs.items():
            argv = [
                sys.executable, "-m", "scalectl", "loadtest", str(NINE), "-H", url,
                "-u", "8", "-r", "8", "-t", "8s", "--processes", "1",
                "--report-dir", str(root / name),
                "--", "--cycle", name, "--plus", str(plus),
            ]  # fmt: skip
            procs[name] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1"},
            )
        for name, proc in procs.items():
            out, _ = proc.communicate(timeout=90)
            assert proc.returncode == 0, f"{name}: {out.decode(errors='replace')}"
        assert no_locust_left(url)
    yield {name: root / name for name in runs}


def compared(cli: Cli, base: Path, new: Path, *args: str) -> tuple[int, dict]:
    result = cli("loadtest", "compare", base, new, "--json", *args)
    assert result.code in (0, ExitCode.REGRESSED), result.stdout + result.stderr
    return result.code, json.loads(result.stdout)


def rows(data: dict) -> dict[tuple[str, str], dict]:
    return {(r["endpoint"], r["metric"]): r for r in data["rows"]}


def test_runs_write_their_histograms(reports: dict[str, Path]) -> None:
    data = json.loads((reports["base"] / "histograms.json").read_text())
    report = json.loads((reports["base"] / "report.json").read_text())
    assert data["aggregate"] == [WORK]
    seconds = data["windows"].values()
    # Every measured request is in exactly one second's histogram.
    assert sum(s[WORK][0] for s in seconds) == report["total"]["requests"] > 500
    assert len(seconds) >= 8


def test_a_regression_is_detected_with_its_interval(cli: Cli, reports: dict[str, Path]) -> None:
    code, data = compared(cli, reports["base"], reports["slow"])
    assert code == ExitCode.REGRESSED
    assert data["interval_note"] == ""
    found = rows(data)
    for scope in (WORK, "Aggregated"):
        p95 = found[(scope, "p95_ms")]
        assert p95["status"] == "regressed"
        interval = p95["interval"]
        assert interval["verdict"] == "regressed"
        assert interval["confidence"] == 0.95
        # The truth: every response 40 ms slower, so p95 moves from ~90 to ~130 ms. The
        # interval holds it and lies far beyond the margin (10% of ~90 ms).
        assert interval["low"] <= interval["diff"] <= interval["high"]
        assert interval["margin"] + 10 < interval["low"] <= SLOW_MS + 5, interval
        assert SLOW_MS - 5 <= interval["high"] < 2 * SLOW_MS, interval
        assert interval["diff"] == pytest.approx(p95["new"] - p95["base"], abs=0.01)
        # Fewer requests in the same time: a closed model's throughput drops.
        rps = found[(scope, "rps")]
        assert rps["status"] == "regressed" and rps["interval"]["high"] < 0
    # The terminal says the same, with the interval and its confidence.
    text = cli("loadtest", "compare", reports["base"], reports["slow"])
    assert text.code == ExitCode.REGRESSED
    assert "regressed at 95%" in text.stdout and "[+" in text.stdout


def test_two_runs_of_the_same_server_show_no_significant_change(
    cli: Cli, reports: dict[str, Path]
) -> None:
    code, data = compared(cli, reports["base"], reports["again"])
    assert code == 0
    for (scope, metric), row in rows(data).items():
        assert row["status"] != "regressed", (scope, metric, row)
        interval = row["interval"]
        assert interval is not None, row
        if metric in ("p95_ms", "error_rate", "rps"):
            assert interval["verdict"] == "no significant change", (scope, metric, row)
    # The same reports give the same interval: the seed is fixed.
    assert compared(cli, reports["base"], reports["again"])[1] == data
