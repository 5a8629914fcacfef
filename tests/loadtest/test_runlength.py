"""How long a run lasts to reach a verdict: `-t auto` until every gate has its samples, and
a warning before a run whose -t cannot reach them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scalectl.errors import ExitCode
from tests.conftest import Result, fixture_path
from tests.helpers.input_files import slo_file
from tests.loadtest.server import no_locust_left, serve

Cli = Callable[..., Result]
KNOWN = fixture_path("locust", "known.py")
pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve() as url:
        yield url


def test_run_time_auto_stops_once_every_gate_has_its_samples(
    cli: Cli, tmp_path: Path, server: str
) -> None:
    # /flaky is a quarter of known.py's tasks; its p99 needs 500 samples.
    slo = slo_file(tmp_path, "version: 1\nendpoints:\n  GET /flaky: {p99_ms: 1000}\n")
    result = cli(
        "loadtest", "--report-dir", tmp_path / "r", KNOWN, "-H", server, "-u", "10",
        "-t", "auto", "--max-run-time", "90s", "--processes", "1", "--slo", slo,
    )  # fmt: skip
    assert result.code == ExitCode.OK, result.stdout + result.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    [gate] = report["slos"]
    assert gate["status"] == "pass", gate
    flaky = {e["name"]: e for e in report["endpoints"]}["/flaky"]
    assert flaky["requests"] >= 500
    took = float(report["meta"]["run_time"].removeprefix("auto (").removesuffix("s)"))
    assert took < 60, report["meta"]
    assert no_locust_left(server)


def test_run_time_auto_needs_gates(cli: Cli, tmp_path: Path, server: str) -> None:
    result = cli("loadtest", KNOWN, "-H", server, "-t", "auto", "--report-dir", tmp_path)
    assert result.code == ExitCode.BAD_INPUT
    assert "-t auto needs --plan or --slo" in result.stderr


def test_a_run_too_short_for_its_gates_is_told_before_it_starts(
    cli: Cli, tmp_path: Path, server: str
) -> None:
    slo = slo_file(tmp_path, "version: 1\nglobal: {p99_ms: 1000}\n")
    result = cli(
        "loadtest", "--report-dir", tmp_path / "r", KNOWN, "-H", server, "--rate", "10",
        "-t", "2s", "--processes", "1", "--slo", slo,
    )  # fmt: skip
    assert result.code == ExitCode.INCONCLUSIVE, result.stdout + result.stderr
    warning = (
        "global p99_ms needs 500 samples: at 10 requests/s that takes at least 50s of "
        "measured load, more than the 2s asked"
    )
    assert warning in result.stderr
    assert "-t auto" in result.stderr
