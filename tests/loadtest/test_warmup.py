"""Warm-up (`scalectl loadtest --warmup`, `warmup:` in SLO files and plans): the first seconds
send load but are left out of every gated figure, and stay in the time series marked.

The end-to-end tests run against a server that is slow and failing for its first seconds
(tests/loadtest/server.py, /cold), in the closed model, the open model and distributed mode.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scalectl.errors import ExitCode, InputError
from scalectl.loadtest.evaluation import abort_breached, evaluate
from scalectl.loadtest.rawjson import from_raw
from scalectl.loadtest.slo import SloSpec, WindowCriterion, from_plan
from scalectl.loadtest.slo import load_slo_file as load_slo
from scalectl.plan.load import load_plan
from scalectl.stack.process import free_port
from tests.conftest import Result, fixture_path
from tests.helpers.loadtest_runs import STARTED, make_raw
from tests.loadtest.server import COLD_MS, serve

Cli = Callable[..., Result]
COLD = fixture_path("locust", "cold.py")
SCALECTL = Path(sys.executable).parent / "scalectl"
# Fast after the cold start; the cold start's 300 ms and 503s are over 5% of a 10 s run.
GATE = "global: {p95_ms: 100, error_rate: 0.01}\n"


# --- what is left out, on known data -----------------------------------------------------


def slow_then_fast(seconds: int = 10, slow: int = 3) -> dict[str, Any]:
    """`slow` seconds of 500 ms requests with one failure each, then fast seconds."""
    per_second = [
        {"GET /x": ([500.0] * 20, 1)} if s < slow else {"GET /x": ([5.0] * 20, 0)}
        for s in range(seconds)
    ]
    raw = make_raw(per_second, errors={"HTTPError 503": 3})
    for per_key in raw["windows"].values():  # failure messages per second, as recorded
        for entry in per_key.values():
            entry.append({"HTTPError 503": entry[1]} if entry[1] else {})
    return raw


def test_the_warm_up_is_left_out_of_every_total_and_kept_in_the_windows() -> None:
    raw = slow_then_fast()
    whole, warm = from_raw(raw), from_raw(raw, warmup=3)
    assert (whole.total.requests, whole.total.failures) == (200, 3)
    assert whole.total.latency.p95_ms == pytest.approx(500, rel=0.01)
    # The run starts on a whole second, so 3 s of warm-up are exactly the 3 slow seconds.
    assert (warm.total.requests, warm.total.failures, warm.total.errors) == (140, 0, {})
    assert warm.total.latency.max_ms == pytest.approx(5, rel=0.01)
    assert warm.duration == pytest.approx(7) and warm.run_duration == pytest.approx(10)
    assert warm.total.rps == pytest.approx(20)  # over the measured 7 s, not the whole 10 s
    assert [w.warmup for w in warm.windows] == [True] * 3 + [False] * 7
    assert [w.latency.p50_ms for w in warm.windows][:3] == [pytest.approx(500, rel=0.01)] * 3
    assert (warm.warmup, warm.measured_t) == (3, 3)
    spec = SloSpec.model_validate({"global": {"p95_ms": 100, "error_rate": 0.01}})
    assert evaluate(spec, whole).verdict == "fail"
    assert evaluate(spec, warm).verdict == "pass"


def test_a_warm_up_ends_on_the_next_whole_second_never_earlier() -> None:
    raw = slow_then_fast()
    raw["started_at"] = STARTED + 0.5  # mid-second: 3 s of warm-up end at 3.5 s -> t=4
    warm = from_raw(raw, warmup=3)
    assert warm.measured_from == STARTED + 4 and warm.measured_t == 4
    assert sum(w.warmup for w in warm.windows) == 4
    assert warm.total.requests == 120


def test_an_endpoint_seen_only_in_the_warm_up_is_known_but_unmeasured() -> None:
    raw = make_raw([{"GET /seed": ([9.0], 0)}, {"GET /x": ([5.0] * 30, 0)}])
    warm = from_raw(raw, warmup=1)
    seed = warm.endpoint("GET /seed")
    assert seed is not None and seed.requests == 0
    spec = SloSpec.model_validate({"endpoints": {"GET /seed": {"p50_ms": 10}}})
    assert evaluate(spec, warm).results[0].status == "inconclusive"


def test_windowed_slos_are_cut_from_the_end_of_the_warm_up() -> None:
    warm = from_raw(slow_then_fast(seconds=13), warmup=3)
    spec = SloSpec(
        windows=[WindowCriterion(metric="p95_ms", below=100, window_seconds=5, min_fraction=1)]
    )
    [result] = evaluate(spec, warm).results
    assert result.status == "pass", result.detail
    assert result.detail == "2 good, 0 bad, 0 unmeasured of 2 windows"
    assert evaluate(spec, from_raw(slow_then_fast(seconds=13))).verdict == "fail"


def test_abort_criteria_ignore_the_warm_up() -> None:
    spec = SloSpec.model_validate({"abort": [{"metric": "p50_ms", "above": 100, "for_seconds": 3}]})
    warm = from_raw(slow_then_fast(seconds=3), warmup=3)  # the live file, during the warm-up
    assert abort_breached(spec, warm.windows, measured_t=warm.measured_t) is None
    assert abort_breached(spec, warm.windows) is not None  # without the warm-up it would abort


# --- where a warm-up is given --------------------------------------------------------------


def test_warmup_in_an_slo_file(tmp_path: Path) -> None:
    for text, seconds in (("10s", 10.0), ("1m30s", 90.0), ("15", 15.0), ("0", 0.0)):
        path = tmp_path / "slo.yaml"
        path.write_text(f"version: 1\nwarmup: {text}\n{GATE}")
        assert load_slo(path).warmup_seconds == seconds
    path.write_text(f"version: 1\n{GATE}")
    assert load_slo(path).warmup_seconds is None
    # The main job's (.ci/demo) SLOs: 50 s of load, the first 20 s not gated.
    smoke = Path(__file__).resolve().parents[2] / "examples" / "slo" / "smoke.yaml"
    assert load_slo(smoke).warmup_seconds == 20


@pytest.mark.parametrize("value", ["soon", "-5s", "10 s", "[10]"])
def test_a_bad_warmup_in_an_slo_file_names_its_line(tmp_path: Path, value: str) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(f"version: 1\n{GATE}warmup: {value}\n")
    with pytest.raises(InputError) as caught:
        load_slo(path)
    text = str(caught.value) + "\n" + "\n".join(caught.value.lines)
    assert f"{path}:3:" in text and "warmup" in text, text


def plan_with(tmp_path: Path, warmup: str) -> Path:
    text = fixture_path("plans", "minimal.yaml").read_text()
    assert "\nslo:\n" in text
    path = tmp_path / "plan.yaml"
    path.write_text(text.replace("\nslo:\n", f"\nslo:\n  warmup: {warmup}\n", 1))
    return path


def test_warmup_in_a_plan(tmp_path: Path) -> None:
    spec = from_plan(load_plan(plan_with(tmp_path, "20s")).plan)
    assert (spec.warmup, spec.warmup_seconds) == ("20s", 20.0)
    assert from_plan(load_plan(fixture_path("plans", "minimal.yaml")).plan).warmup is None


def test_a_bad_warmup_in_a_plan_names_its_line(tmp_path: Path) -> None:
    path = plan_with(tmp_path, "twenty")
    line = 1 + path.read_text().splitlines().index("  warmup: twenty")
    with pytest.raises(InputError) as caught:
        load_plan(path)
    text = "\n".join(caught.value.lines) + str(caught.value)
    assert f"{path}:{line}:" in text and "slo.warmup" in text, text


def test_a_warm_up_as_long_as_the_run_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    # Checked before any host is contacted: nothing would be measured.
    for args in (["--warmup", "10s"], ["--warmup", "1m"]):
        result = cli("loadtest", COLD, "-H", "http://127.0.0.1:9", "-t", "10s", *args)
        assert result.code == ExitCode.BAD_INPUT, result.stderr
        assert "the warm-up must be shorter than --run-time (10s)" in result.stderr
    slo = tmp_path / "slo.yaml"
    slo.write_text(f"version: 1\nwarmup: 30s\n{GATE}")
    result = cli("loadtest", COLD, "-H", "http://127.0.0.1:9", "-t", "20s", "--slo", slo)
    assert result.code == ExitCode.BAD_INPUT
    assert f"{slo} warmup 30s: the warm-up must be shorter" in result.stderr
    bad = cli("loadtest", COLD, "-H", "http://127.0.0.1:9", "-t", "20s", "--warmup", "soon")
    assert bad.code == ExitCode.BAD_INPUT and "--warmup soon: expected a duration" in bad.stderr
    worker = cli("loadtest", COLD, "--worker", "--warmup", "5s", "-t", "3s")
    assert worker.code == ExitCode.BAD_INPUT and "--warmup" in worker.stderr


# --- against a server that starts cold ---------------------------------------------------------


@pytest.fixture
def cold_server() -> Iterator[str]:
    with serve() as url:  # a fresh server per test: each one starts cold
        yield url


def run(
    cli: Cli, tmp_path: Path, url: str, *args: str | Path, seconds: int = 10
) -> tuple[Result, dict[str, Any]]:
    slo = tmp_path / "slo.yaml"
    if not slo.exists():
        slo.write_text(f"version: 1\n{GATE}")
    result = cli(
        "loadtest", COLD, "-H", url, "-u", "10", "-r", "10", "-t", f"{seconds}s",
        "--slo", slo, "--report-dir", tmp_path / "report", *args,
    )  # fmt: skip
    path = tmp_path / "report" / "report.json"
    return result, json.loads(path.read_text()) if path.exists() else {}


def check_marked(report: dict[str, Any], tmp_path: Path) -> None:
    """The warm-up's slow, failing seconds are in the time series, marked; the figures are
    the measured seconds' exactly."""
    series = report["timeseries"]
    warm = [w for w in series if w["warmup"]]
    measured = [w for w in series if not w["warmup"]]
    assert warm and measured and max(w["t"] for w in warm) < min(w["t"] for w in measured)
    assert max(w["p95_ms"] for w in warm) >= COLD_MS  # the cold start is still visible
    assert sum(w["failures"] for w in warm) > 0
    assert report["total"]["requests"] == sum(w["requests"] for w in measured)
    assert report["total"]["failures"] == 0 and report["errors"] == []
    assert report["total"]["p95_ms"] < COLD_MS
    assert report["meta"]["warmup_s"] == 5
    rows = list(csv.DictReader(io.StringIO((tmp_path / "report" / "timeseries.csv").read_text())))
    assert {r["t"] for r in rows if r["warmup"] == "1"} == {str(w["t"]) for w in warm}
    assert "warm-up (not gated)" in (tmp_path / "report" / "report.html").read_text()
    assert "Warm-up: the first" in (tmp_path / "report" / "summary.md").read_text()


@pytest.mark.stack
def test_cold_start_fails_the_gate_without_a_warm_up_and_passes_with_one(
    cli: Cli, tmp_path: Path, cold_server: str
) -> None:
    (tmp_path / "slo.yaml").write_text(f"version: 1\nwarmup: 5s\n{GATE}")
    result, report = run(cli, tmp_path, cold_server, "--warmup", "0")  # overrides the file
    assert result.code == ExitCode.CHECK_FAILED, result.stdout + result.stderr
    assert report["total"]["p95_ms"] >= COLD_MS and report["total"]["failures"] > 0
    assert report["meta"]["warmup_s"] == 0
    assert not any(w["warmup"] for w in report["timeseries"])


@pytest.mark.stack
def test_warm_up_from_the_slo_file_passes_a_cold_start(
    cli: Cli, tmp_path: Path, cold_server: str
) -> None:
    (tmp_path / "slo.yaml").write_text(f"version: 1\nwarmup: 5s\n{GATE}")
    result, report = run(cli, tmp_path, cold_server)
    assert result.code == 0, result.stdout + result.stderr
    assert "(5s warm-up first)" in result.stdout
    assert "t=0s (warm-up)" in result.stdout + result.stderr
    assert "warm-up: the first" in result.stdout
    check_marked(report, tmp_path)


@pytest.mark.stack
def test_warm_up_in_the_open_model(cli: Cli, tmp_path: Path, cold_server: str) -> None:
    # 4 arrivals/s per user cannot keep up with 300 ms responses: the lateness and the
    # corrected latency of the cold start stay in the warm-up; the steady rate is measured.
    # 10 measured seconds, not 5: a generator that is still a few hundred ms behind its
    # schedule when the run stops (a busy CI machine) misses the last arrivals, and over 5 s
    # that alone was 14% of the rate (34.5/s of 40 in one CI run).
    result, report = run(
        cli, tmp_path, cold_server, "--rate", "40", "--processes", "2", "--warmup", "5s",
        seconds=15,
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    check_marked(report, tmp_path)
    model = report["load_model"]
    assert model["achieved_rate"] == pytest.approx(40, rel=0.1)
    # The cold start's lateness stays in the warm-up. Some lateness in the measured seconds
    # is the machine's: in a full parallel suite on 2 cores the generator shares them and
    # 10-16% of arrivals were late in 3 of 6 runs (5% alone). The bound catches a warm-up
    # that leaks; the latency check below catches the cold start's slow answers.
    assert model["late"] <= 0.2 * model["arrivals"], model
    assert report["total"]["raw"]["p95_ms"] < COLD_MS
    assert model["arrivals"] <= 40 * 11  # at most the measured seconds' arrivals


@pytest.mark.stack
def test_warm_up_in_distributed_mode(cli: Cli, tmp_path: Path, cold_server: str) -> None:
    port = free_port()
    worker = subprocess.Popen(
        [str(SCALECTL), "loadtest", str(COLD), "--worker", "--master-port", str(port),
         "-t", "30s", "--processes", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        result, report = run(
            cli, tmp_path, cold_server, "--master", "--expect-workers", "1",
            "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--warmup", "5s",
        )  # fmt: skip
        log = worker.communicate(timeout=60)[0]
    finally:
        if worker.poll() is None:
            worker.kill()
    assert result.code == 0, result.stdout + result.stderr + log
    check_marked(report, tmp_path)
    assert report["generator"]["processes"] == 1
    assert worker.returncode == 0, log
