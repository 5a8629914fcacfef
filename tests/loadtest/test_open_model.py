"""The open model (`--rate`): a held arrival rate, coordinated-omission correction, late
and dropped arrivals, and a missed rate that makes the run inconclusive."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scalectl.errors import ExitCode
from scalectl.loadtest.cpu import usable_cores
from tests.conftest import Result, fixture_path
from tests.helpers.input_files import slo_file
from tests.loadtest.server import (
    SLOW_MS,
    SLOWER_MS,
    STALL_PERIOD,
    STALL_SECONDS,
    no_locust_left,
    serve,
)

Cli = Callable[..., Result]
STALL = fixture_path("locust", "stall.py")
KNOWN = fixture_path("locust", "known.py")
pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve() as url:
        yield url


def run(
    cli: Cli, report_dir: Path, *args: str | Path, env: dict[str, str] | None = None
) -> tuple[Result, dict]:
    result = cli("loadtest", *args, "--report-dir", report_dir, env=env)
    path = report_dir / "report.json"
    return result, json.loads(path.read_text()) if path.exists() else {}


def test_corrected_latency_shows_the_stall_that_raw_latency_hides(
    cli: Cli, tmp_path: Path, server: str
) -> None:
    # The server freezes for 1 s in every 4 s. Two users must hold 100 arrivals/s: during a
    # stall each is stuck in one request while ~100 arrivals fall due. Raw latency (send to
    # receive) sees only the 2 stuck requests per cycle (0.5%, below p99); latency from the
    # intended start sees every arrival that waited, about a quarter of them.
    slo = slo_file(tmp_path, "version: 1\nglobal: {p99_ms: 200}\n")
    result, report = run(
        cli,
        tmp_path / "r",
        STALL,
        "-H",
        server,
        "--rate",
        "100",
        "-u",
        "2",
        "-t",
        "10s",
        "--processes",
        "1",
        "--slo",
        slo,
    )
    total = report["total"]
    assert total["raw"]["p99_ms"] < 50, total
    assert total["p99_ms"] >= 0.6 * STALL_SECONDS * 1000, total
    assert total["raw"]["max_ms"] >= 0.5 * STALL_SECONDS * 1000  # the max cannot hide it
    assert total["p50_ms"] < 50  # outside the stalls arrivals are on time
    model = report["load_model"]
    assert model["type"] == "open" and model["latency"] == "corrected"
    stalls = 10 // STALL_PERIOD
    assert model["late"] >= stalls * 50, model  # ~100 arrivals fall due in each stall
    assert model["max_lag_ms"] >= 500
    # A run that ends inside a stall leaves that stall's backlog unsent: dropped.
    assert model["dropped"] <= STALL_SECONDS * 100 + 5
    assert report["generator"]["requested_rps"] == 100
    # Achieved is measured over the ~8-9 whole seconds once both users run. Arrivals due in
    # a stall start after it: a stall cut by the span's start adds up to its 100 caught-up
    # arrivals, one cut by the run's end loses them (dropped). So besides scheduling noise
    # (5/s) the span's edges move it by up to one stall's arrivals over 8 s.
    edges = 100 * STALL_SECONDS / 8
    assert report["generator"]["achieved_rps"] == pytest.approx(100, abs=edges + 5), report
    # The SLO gates on what users saw, the corrected p99.
    assert result.code == ExitCode.CHECK_FAILED, result.stdout + result.stderr
    assert report["verdict"] == "fail"
    assert "coordinated omission corrected" in (tmp_path / "r" / "summary.md").read_text()
    assert 'id="raw-latency-table"' in (tmp_path / "r" / "report.html").read_text()
    assert "open model:" in result.stdout and "uncorrected p50/p95/p99" in result.stdout
    assert no_locust_left(server)


def test_rate_is_held_across_processes(cli: Cli, tmp_path: Path, server: str) -> None:
    # 40 arrivals/s over 40 users (1/s each), spread over 2 Locust processes, against a
    # server taking 10-100 ms: every arrival on time, nothing late or dropped.
    result, report = run(
        cli, tmp_path, KNOWN, "-H", server, "--rate", "40", "-t", "6s", "--processes", "2"
    )
    assert result.code == 0, result.stdout + result.stderr
    assert report["generator"]["limited_by"] == [], report["generator"]
    model = report["load_model"]
    assert model["rate_per_user"] == pytest.approx(1.0)
    assert model["dropped"] == 0
    assert report["generator"]["achieved_rps"] == pytest.approx(40, rel=0.1)
    # No user ever waits behind its own response (1 arrival/s, responses <= 100 ms), so a
    # late arrival here is only a process not scheduled within 10 ms, which a shared 2-core
    # machine running 3 Locust processes and the server does now and then. A rate not held
    # would make most arrivals late, and lags of a response or more.
    assert model["late"] <= 0.25 * model["arrivals"], model
    assert model["max_lag_ms"] < 1000, model
    # Whole seconds once every user runs: about 40 arrivals each.
    steady = [w["requests"] for w in report["timeseries"]][2:-1]
    assert steady and all(30 <= n <= 50 for n in steady), steady
    known = {e["name"]: e for e in report["endpoints"]}["/known"]
    # On time, corrected and raw latency agree: the median arrival is not late (10 ms).
    assert known["p50_ms"] == pytest.approx(known["raw"]["p50_ms"], abs=10)
    # The server sleeps 50-60 ms at the median: a floor. Above it only overhead and
    # scheduling delays, which a busy machine stretches to tens of milliseconds.
    assert 50 <= known["p50_ms"] <= 85
    assert no_locust_left(server)


def test_oversubscribed_generator_is_inconclusive(cli: Cli, tmp_path: Path, server: str) -> None:
    # More Locust processes than cores, asked for far more than they can send to a server
    # that answers at once: each process gets a share of a core, so none reads saturated,
    # and most arrivals start late. That was a pass.
    cores = usable_cores()
    result, report = run(
        cli, tmp_path, STALL, "-H", server, "--rate", "30000", "-t", "6s",
        "--processes", str(cores + 1), env={"STALL_PATH": "/fast"},
    )  # fmt: skip
    assert result.code == ExitCode.INCONCLUSIVE, result.stdout + result.stderr
    generator = report["generator"]
    assert generator["cores"] == cores and generator["processes"] == cores + 1
    assert "processes_over_cores" in generator["limited_by"], generator
    assert f"{cores + 1} Locust processes on {cores} cores" in result.stderr
    assert "late_arrivals" in generator["limited_by"], generator
    assert generator["late_share"] > 0.25, generator
    assert "started late or never" in result.stderr
    assert no_locust_left(server)


def test_missed_rate_is_inconclusive_with_drops(cli: Cli, tmp_path: Path, server: str) -> None:
    # Two users against a 100 ms endpoint can start at most 20 tasks/s, not 200.
    result, report = run(
        cli,
        tmp_path,
        STALL,
        "-H",
        server,
        "--rate",
        "200",
        "-u",
        "2",
        "-t",
        "5s",
        "--processes",
        "1",
        env={"STALL_PATH": "/slow"},
    )
    assert result.code == ExitCode.INCONCLUSIVE, result.stdout + result.stderr
    assert report["verdict"] == "inconclusive"
    assert "tasks/s of the 200/s asked" in result.stderr
    model = report["load_model"]
    limit = 2 * 1000 / SLOW_MS
    assert report["generator"]["achieved_rps"] <= 1.5 * limit
    assert model["dropped"] > model["arrivals"]
    assert "late_arrivals" in report["generator"]["limited_by"]
    assert "more than 25%) started late or never" in result.stderr


def test_max_late_share_sets_the_lateness_gate(cli: Cli, tmp_path: Path, server: str) -> None:
    # As above, shorter: nearly every arrival is late or dropped. With the gate at 100% the
    # lateness is reported but rules nothing; the missed rate still makes it inconclusive.
    result, report = run(
        cli, tmp_path, STALL, "-H", server, "--rate", "100", "-u", "2", "-t", "3s",
        "--processes", "1", "--max-late-share", "1", env={"STALL_PATH": "/slow"},
    )  # fmt: skip
    assert result.code == ExitCode.INCONCLUSIVE, result.stdout + result.stderr
    generator = report["generator"]
    assert generator["late_share"] > 0.5, generator
    assert "late_arrivals" not in generator["limited_by"], generator
    assert "started late or never" not in result.stderr
    assert "tasks/s of the 100/s asked" in result.stderr


def test_drops_reach_the_master_across_processes(cli: Cli, tmp_path: Path, server: str) -> None:
    # Two users (one per Locust process) against a 2 s endpoint must start 20 tasks/s for
    # 5 s: each sends about 3, the other ~95 due arrivals are dropped. The workers' counts
    # must reach the master although their users take up to 2 s more to stop.
    result, report = run(
        cli,
        tmp_path,
        STALL,
        "-H",
        server,
        "--rate",
        "20",
        "-u",
        "2",
        "-t",
        "5s",
        "--processes",
        "2",
        env={"STALL_PATH": "/slower"},
    )
    assert result.code == ExitCode.INCONCLUSIVE, result.stdout + result.stderr
    model = report["load_model"]
    assert model["arrivals"] <= 2 * (5 * 1000 / SLOWER_MS + 1), model
    # Due by the run's end, not by when the stuck users were finally stopped (2 s later):
    # at most 20/s over the 5 s plus each user's first, at least the last 3.5 s (the users
    # start within the first second, and the first arrival within 1/10 s of that).
    due = model["arrivals"] + model["dropped"]
    assert 20 * 3.5 <= due <= 20 * 5 + 2, model
    assert report["generator"]["achieved_rps"] <= 2
    assert no_locust_left(server)


def test_achieved_rate_counts_only_users_that_ran(cli: Cli, tmp_path: Path, server: str) -> None:
    # 40 users started at 4/s: after 5 s only 20 run, each on time at 1/s. Nothing is
    # late or dropped, yet about 9 tasks/s were started, not 40: inconclusive.
    result, report = run(
        cli,
        tmp_path,
        STALL,
        "-H",
        server,
        "--rate",
        "40",
        "-u",
        "40",
        "-r",
        "4",
        "-t",
        "5s",
        "--processes",
        "1",
        env={"STALL_PATH": "/fast"},
    )
    assert result.code == ExitCode.INCONCLUSIVE, result.stdout + result.stderr
    assert "tasks/s of the 40/s asked" in result.stderr
    model = report["load_model"]
    assert model["dropped"] == 0
    assert 4 <= report["generator"]["achieved_rps"] <= 15, report["generator"]
    assert no_locust_left(server)


def test_rate_with_a_load_shape_is_bad_input(cli: Cli, tmp_path: Path, server: str) -> None:
    result, _ = run(cli, tmp_path, "step", "-H", server, "--rate", "10", "-t", "3s")
    assert result.code == ExitCode.BAD_INPUT
    assert "--rate cannot be combined with a load shape" in result.stderr
    assert no_locust_left(server)
