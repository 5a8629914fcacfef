"""A ramping arrival rate (`--rate-stages`, or an SLO file's `rate_stages`): arrivals follow
the rate curve's integral, per stage checked against what was meant, in one process and
split over several."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scalectl.errors import ExitCode
from scalectl.loadtest.ratecurve import MIN_STAGE_ARRIVALS, RateCurve, stage_rates
from tests.conftest import Result, fixture_path
from tests.helpers.input_files import slo_file
from tests.loadtest.server import SLOW_MS, no_locust_left, serve

Cli = Callable[..., Result]
STALL = fixture_path("locust", "stall.py")
FAST = {"STALL_PATH": "/fast"}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve() as url:
        yield url


def run(cli: Cli, report_dir: Path, *args: str | Path, env: dict[str, str]) -> tuple[Result, dict]:
    result = cli("loadtest", STALL, *args, "--report-dir", report_dir, env=env)
    path = report_dir / "report.json"
    return result, json.loads(path.read_text()) if path.exists() else {}


def _per_second(report: dict) -> dict[int, int]:
    return {w["t"]: w["requests"] for w in report["timeseries"]}


# --- the curve ----------------------------------------------------------------------------


def test_the_nth_arrival_falls_where_the_integral_reaches_n() -> None:
    curve = RateCurve.parse("0s:100,1m:1000,2m:1000,150s:0")
    assert curve.end == 150 and curve.peak == 1000
    assert curve.integral(60) == pytest.approx(60 * (100 + 1000) / 2)
    assert curve.integral(150) == pytest.approx(33_000 + 60_000 + 15_000)
    assert curve.integral(999) == curve.integral(150)  # ends at 0: nothing more
    for t in (0.5, 10, 59.9, 60, 90, 121, 149.9):
        assert curve.time_of(curve.integral(t)) == pytest.approx(t)
    assert math.isinf(curve.time_of(curve.integral(150) + 1))
    assert curve.rate_at(30) == pytest.approx(550)
    held = RateCurve.parse("0:20,10s:20")
    assert held.time_of(201) == pytest.approx(10 + 1 / 20)  # the last rate holds on
    step = RateCurve.parse("0s:10,5s:10,5s:100")
    assert step.rate_at(5) == 100 and step.integral(6) == pytest.approx(150)
    assert RateCurve.parse(held.scaled(0.5).text()) == RateCurve.parse("0:10,10:10")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10s:100", "at 0s"),
        ("0s:100,20s:5,10s:7", "must not go back"),
        ("0s:100,10s:-1", ">= 0"),
        ("0s:0,10s:0", "above 0"),
        ("0s100", "TIME:RATE"),
        ("0s:fast", "must be a number"),
        ("soon:100", "duration"),
    ],
)
def test_malformed_stages_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateCurve.parse(text)


def test_stage_rates_compare_each_stage_with_its_integral() -> None:
    # The run started 0.25 s into its first wall-clock second: second t covers run time
    # [t - 0.25, t + 0.75). Arrivals exactly as meant in the ramp, half of it in the hold.
    curve = RateCurve.parse("0s:20,4s:100,8s:100")
    offset = 0.25
    meant = {t: curve.integral(t + 1 - offset) - curve.integral(t - offset) for t in range(9)}
    arrivals = {t: round(n if t <= 4 else n / 2) for t, n in meant.items()}
    ramp, hold = stage_rates(curve, arrivals, (1, 8), offset)
    # Seconds 1-3 lie in the ramp; second 4 ([3.75, 4.75)) straddles the step: in neither.
    assert (ramp.start, ramp.end, ramp.seconds) == (0, 4, 3)
    assert ramp.intended == pytest.approx(sum(meant[t] for t in range(1, 4)) / 3)
    assert not ramp.missed(0.1) and ramp.checked
    assert (hold.start, hold.seconds) == (4, 3) and hold.label() == "4s-8s"
    assert hold.achieved == pytest.approx(hold.intended / 2, rel=0.02)
    assert hold.missed(0.1)
    few = stage_rates(RateCurve.parse("0s:1,100s:1"), {1: 0}, (1, 5), 0.0)
    assert few[0].intended * few[0].seconds < MIN_STAGE_ARRIVALS
    assert not few[0].checked and not few[0].missed(0.1)  # too few to judge alone


# --- runs ---------------------------------------------------------------------------------

stack = pytest.mark.stack  # runs Locust against the test server


@stack
def test_arrivals_follow_the_ramp_and_the_run_ends_at_the_last_point(
    cli: Cli, tmp_path: Path, server: str
) -> None:
    # From 20/s up to 100/s over 4 s, then held to 8 s; no -t: the last point is the end.
    curve = RateCurve.parse("0s:20,4s:100,8s:100")
    result, report = run(
        cli, tmp_path, "-H", server, "--rate-stages", "0s:20,4s:100,8s:100",
        "--processes", "1", env=FAST,
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    meta = report["meta"]
    assert meta["run_time"] == "8s" and meta["rate_stages"] == "0s:20,4s:100,8s:100"
    assert meta["users"] == 100  # one per arrival/s at the peak
    assert 7.5 <= meta["duration_s"] <= 9.5, meta
    model = report["load_model"]
    assert model["dropped"] == 0 and model["late"] <= 0.25 * model["arrivals"], model
    stages = {s["stage"]: s for s in model["stages"]}
    assert set(stages) == {"0s-4s", "4s-8s"}, stages
    for stage in stages.values():
        assert stage["checked"], stage
        assert stage["achieved_rps"] == pytest.approx(stage["requested_rps"], rel=0.1), stage
    assert stages["0s-4s"]["requested_rps"] < 80 < stages["4s-8s"]["requested_rps"]
    # Second by second the arrivals climb with the curve: the run is at most 1 s off the
    # wall-clock seconds, so second t meant between the curve's rate at t - 1 and t + 1.
    seen = _per_second(report)
    for t in range(1, 7):
        low, high = curve.rate_at(t - 1), curve.rate_at(t + 1)
        assert 0.8 * low <= seen.get(t, 0) <= 1.2 * high, (t, seen)
    assert report["generator"]["achieved_rps"] == pytest.approx(
        report["generator"]["requested_rps"], rel=0.1
    )
    assert "ramping 0s:20,4s:100,8s:100" in result.stdout
    assert no_locust_left(server)


@stack
def test_stages_from_the_slo_file_split_over_processes(
    cli: Cli, tmp_path: Path, server: str
) -> None:
    # The SLO file carries the stages; two Locust processes each send their users' share.
    slo = slo_file(
        tmp_path,
        "version: 1\nrate_stages: 0s:10,3s:60,6s:60\nglobal: {error_rate: 0.01}\n",
    )
    result, report = run(
        cli, tmp_path / "r", "-H", server, "--slo", slo, "--processes", "2", env=FAST
    )
    assert result.code == 0, result.stdout + result.stderr
    assert report["meta"]["run_time"] == "6s" and report["generator"]["processes"] == 2
    model = report["load_model"]
    assert model["dropped"] == 0, model
    assert model["rate_per_user"] == pytest.approx(1.0)  # 60 users for a peak of 60/s
    hold = {s["stage"]: s for s in model["stages"]}["3s-6s"]
    assert hold["achieved_rps"] == pytest.approx(60, rel=0.1), model
    assert no_locust_left(server)


@stack
def test_a_missed_stage_is_inconclusive_and_named(cli: Cli, tmp_path: Path, server: str) -> None:
    # Three users against a 100 ms endpoint start at most 30 tasks/s: 20/s is held, the
    # step to 60/s is not. The whole run's mean would hide which stage fell short.
    result, report = run(
        cli, tmp_path, "-H", server, "--rate-stages", "0s:20,3s:20,3s:60,6s:60",
        "-u", "3", "--processes", "1", env={"STALL_PATH": "/slow"},
    )  # fmt: skip
    assert result.code == ExitCode.INCONCLUSIVE, result.stdout + result.stderr
    stages = {s["stage"]: s for s in report["load_model"]["stages"]}
    assert stages["0s-3s"]["achieved_rps"] == pytest.approx(20, rel=0.1), stages
    assert stages["3s-6s"]["achieved_rps"] <= 1.3 * 3 * 1000 / SLOW_MS, stages
    assert "stage 3s-6s: the generator started" in result.stderr
    assert "stage 0s-3s" not in result.stderr
    assert report["load_model"]["dropped"] > 0
    assert no_locust_left(server)


def test_rate_and_rate_stages_are_exclusive(cli: Cli, tmp_path: Path) -> None:
    both = cli("loadtest", STALL, "-H", "http://127.0.0.1:1", "--rate", "5",
               "--rate-stages", "0s:5,5s:5", "--report-dir", tmp_path)  # fmt: skip
    assert both.code == ExitCode.BAD_INPUT and "not both" in both.stderr
    bad = cli("loadtest", STALL, "-H", "http://127.0.0.1:1", "--rate-stages", "5s:5",
              "--report-dir", tmp_path)  # fmt: skip
    assert bad.code == ExitCode.BAD_INPUT and "--rate-stages 5s:5: the first" in bad.stderr
    slo = slo_file(tmp_path, "version: 1\nrate_stages: 0s:5,1s:x\nglobal: {p95_ms: 9}\n")
    filed = cli("loadtest", STALL, "-H", "http://127.0.0.1:1", "--slo", slo,
                "--report-dir", tmp_path)  # fmt: skip
    assert filed.code == ExitCode.BAD_INPUT and f"{slo}:2:" in filed.stderr, filed.stderr
