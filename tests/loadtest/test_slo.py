from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scalectl.errors import ExitCode, InputError
from scalectl.loadtest.evaluation import abort_breached, evaluate
from scalectl.loadtest.rawjson import from_raw
from scalectl.loadtest.results import Results, Window
from scalectl.loadtest.slo import (
    AbortCriterion,
    EndpointThresholds,
    SloSpec,
    Thresholds,
    WindowCriterion,
    from_plan,
    load_slo_file,
)
from scalectl.plan.load import load_plan
from scalectl.plan.slo import EndpointSlo, Latency, Slo
from tests.conftest import fixture_path
from tests.helpers.loadtest_runs import Second, make_raw


def uniform_run(
    key: str = "GET /api/stats", *, n: int = 1000, seconds: int = 10, failures: int = 0
) -> Results:
    """n samples spread evenly over 1..1000 ms, dealt round-robin over `seconds` seconds."""
    values = [1 + 999 * i / (n - 1) for i in range(n)] if n > 1 else [1.0]
    per = [values[s::seconds] for s in range(seconds)]
    fails = [failures // seconds + (s < failures % seconds) for s in range(seconds)]
    return from_raw(make_raw([{key: (per[s], fails[s])} for s in range(seconds)]))


def spec(**kwargs: Any) -> SloSpec:
    return SloSpec.model_validate({"version": 1, **kwargs})


def outcome(spec_: SloSpec, results: Results) -> list[tuple[str, float | None, str]]:
    return [(s.name, s.observed, s.status) for s in evaluate(spec_, results).results]


# --- whole-run SLOs -----------------------------------------------------------------------


def test_known_uniform_distribution_gives_exact_percentiles_and_a_fail_verdict() -> None:
    results = uniform_run()
    evaluation = evaluate(
        spec(
            **{
                "global": {
                    "p50_ms": 600,
                    "p95_ms": 300,
                    "p99_ms": 1000,
                    "max_ms": 1001,
                    "error_rate": 0.01,
                    "min_throughput_rps": 50,
                }
            }
        ),
        results,
    )
    observed = {s.metric: s.observed for s in evaluation.results}
    # HDR keeps 3 significant digits: every value is within 0.1% of the true one.
    assert observed["p50_ms"] == pytest.approx(500.5, rel=1e-3)
    assert observed["p95_ms"] == pytest.approx(950.05, rel=1e-3)
    assert observed["p99_ms"] == pytest.approx(990.0, rel=1e-3)
    assert observed["max_ms"] == pytest.approx(1000, rel=1e-3)
    assert observed["error_rate"] == 0.0
    assert observed["min_throughput_rps"] == 100.0
    assert [(s.name, s.status) for s in evaluation.results] == [
        ("global p50_ms <= 600", "pass"),
        ("global p95_ms <= 300", "fail"),
        ("global p99_ms <= 1000", "pass"),
        ("global max_ms <= 1001", "pass"),
        ("global error_rate <= 0.01", "pass"),
        ("global min_throughput_rps >= 50", "pass"),
    ]
    assert evaluation.verdict == "fail"
    assert evaluation.exit_code == ExitCode.CHECK_FAILED
    p95 = evaluation.results[1]
    assert (p95.threshold_text, p95.passed, p95.scope) == ("300.0 ms", False, "global")


def test_all_within_limits_passes() -> None:
    evaluation = evaluate(
        spec(**{"global": {"p95_ms": 960, "min_throughput_rps": 99}}), uniform_run()
    )
    assert evaluation.verdict == "pass"
    assert evaluation.exit_code == ExitCode.OK


def test_throughput_below_minimum_fails() -> None:
    result = evaluate(spec(**{"global": {"min_throughput_rps": 101}}), uniform_run()).results[0]
    assert (result.name, result.observed, result.status) == (
        "global min_throughput_rps >= 101",
        100.0,
        "fail",
    )


@pytest.mark.parametrize(("limit", "status"), [(0.02, "fail"), (0.03, "pass"), (0.05, "pass")])
def test_error_rate_against_a_known_failed_fraction(limit: float, status: str) -> None:
    results = uniform_run(failures=30)  # 30 of 1000
    assert outcome(spec(**{"global": {"error_rate": limit}}), results) == [
        (f"global error_rate <= {limit}", 0.03, status)
    ]


def test_too_few_samples_is_inconclusive_never_pass() -> None:
    results = uniform_run(n=50, seconds=5)  # p95 needs 100 samples, p99 500, p50 20
    evaluation = evaluate(
        spec(**{"global": {"p50_ms": 900, "p95_ms": 5000, "p99_ms": 5000}}), results
    )
    assert [(s.name, s.status, s.detail) for s in evaluation.results] == [
        ("global p50_ms <= 900", "pass", ""),
        ("global p95_ms <= 5000", "inconclusive", "50 samples, need 100"),
        ("global p99_ms <= 5000", "inconclusive", "50 samples, need 500"),
    ]
    assert evaluation.verdict == "inconclusive"
    assert evaluation.exit_code == ExitCode.INCONCLUSIVE


def test_a_fail_outweighs_inconclusive() -> None:
    results = uniform_run(n=50, seconds=5)
    evaluation = evaluate(spec(**{"global": {"p50_ms": 10, "p99_ms": 5000}}), results)
    assert [s.status for s in evaluation.results] == ["fail", "inconclusive"]
    assert evaluation.verdict == "fail"


def test_min_samples_can_be_lowered() -> None:
    results = uniform_run(n=50, seconds=5)
    evaluation = evaluate(
        spec(**{"global": {"p95_ms": 5000}}),
        results,
        min_samples={50.0: 1, 90.0: 1, 95.0: 1, 99.0: 1},
    )
    assert evaluation.verdict == "pass"


def test_no_requests_is_inconclusive_except_throughput() -> None:
    results = from_raw(make_raw([{}, {}]))
    assert outcome(
        spec(
            **{
                "global": {
                    "p95_ms": 300,
                    "max_ms": 300,
                    "error_rate": 0.01,
                    "min_throughput_rps": 1,
                }
            }
        ),
        results,
    ) == [
        ("global p95_ms <= 300", None, "inconclusive"),
        ("global max_ms <= 300", None, "inconclusive"),
        ("global error_rate <= 0.01", None, "inconclusive"),
        ("global min_throughput_rps >= 1", 0.0, "fail"),
    ]


def two_endpoints() -> Results:
    slow = [float(v) for v in range(1, 1001)]
    fast = [v / 10 for v in range(1, 1001)]
    seconds = 10
    return from_raw(
        make_raw(
            [
                {"GET /api/stats": (slow[s::seconds], 0), "GET /api/items": (fast[s::seconds], 1)}
                for s in range(seconds)
            ]
        )
    )


def test_endpoint_overrides_by_exact_key_and_bare_name() -> None:
    results = two_endpoints()
    evaluation = evaluate(
        spec(
            **{
                "global": {"p95_ms": 1000},
                "endpoints": {"GET /api/stats": {"p95_ms": 500}, "/api/items": {"p95_ms": 100}},
            }
        ),
        results,
    )
    assert [(s.name, s.scope, s.status) for s in evaluation.results] == [
        ("global p95_ms <= 1000", "global", "pass"),
        ("GET /api/stats p95_ms <= 500", "GET /api/stats", "fail"),
        ("GET /api/items p95_ms <= 100", "GET /api/items", "pass"),
    ]
    assert evaluation.results[1].observed == pytest.approx(950, rel=1e-3)
    assert evaluation.results[2].observed == pytest.approx(95, rel=1e-3)


def test_unknown_endpoint_is_an_input_error_with_a_suggestion() -> None:
    with pytest.raises(InputError) as caught:
        evaluate(
            spec(
                endpoints={"GET /api/stat": {"p95_ms": 500}},
                windows=[
                    {"metric": "rps", "above": 1, "min_fraction": 0.5, "endpoint": "POST /login"}
                ],
            ),
            two_endpoints(),
        )
    assert caught.value.exit_code == ExitCode.BAD_INPUT == 2
    assert caught.value.message == "the SLO has 2 endpoint names that match no endpoint of this run"
    assert caught.value.lines == (
        "endpoints 'GET /api/stat': no such endpoint; did you mean 'GET /api/stats'?",
        "windows[0].endpoint 'POST /login': no such endpoint",
        "endpoints seen: GET /api/items, GET /api/stats",
    )


def test_ambiguous_bare_name_is_an_input_error() -> None:
    results = from_raw(make_raw([{"GET /x": ([1.0], 0), "POST /x": ([1.0], 0)}]))
    with pytest.raises(InputError) as caught:
        evaluate(spec(endpoints={"/x": {"p50_ms": 5}}), results)
    assert caught.value.message == "the SLO has 1 endpoint name that match no endpoint of this run"
    assert caught.value.lines == (
        "endpoints '/x': ambiguous, matches GET /x, POST /x",
        "endpoints seen: GET /x, POST /x",
    )


# --- windows ----------------------------------------------------------------------------


def windowed_run(slow_seconds: set[int], *, per_second: int = 20, seconds: int = 30) -> Results:
    """`per_second` requests each second at 10 ms, or 500 ms in the slow seconds."""
    return from_raw(
        make_raw(
            [
                {"GET /api/stats": ([500.0 if s in slow_seconds else 10.0] * per_second, 0)}
                for s in range(seconds)
            ]
        )
    )


def window_spec(min_fraction: float, **extra: Any) -> SloSpec:
    criterion = {
        "metric": "p95_ms",
        "below": 200,
        "window_seconds": 10,
        "min_fraction": min_fraction,
    }
    return spec(windows=[{**criterion, **extra}])


@pytest.mark.parametrize(("min_fraction", "status"), [(0.6, "pass"), (0.9, "fail")])
def test_windowed_latency(min_fraction: float, status: str) -> None:
    results = windowed_run({25})  # one slow second spoils the third 10 s window
    result = evaluate(window_spec(min_fraction), results).results[0]
    assert result.name == f"global p95_ms < 200 in >= {int(min_fraction * 100)}% of 10s windows"
    assert (result.kind, result.comparator, result.threshold) == ("windows", ">=", min_fraction)
    assert result.observed == pytest.approx(2 / 3, abs=1e-6)
    assert result.detail == "2 good, 1 bad, 0 unmeasured of 3 windows"
    assert result.status == status


def test_windowed_on_an_endpoint_by_bare_name() -> None:
    result = evaluate(window_spec(0.6, endpoint="/api/stats"), windowed_run({25})).results[0]
    assert result.name == "GET /api/stats p95_ms < 200 in >= 60% of 10s windows"
    assert (result.scope, result.status) == ("GET /api/stats", "pass")


def test_windows_with_too_few_samples_are_unmeasured_and_can_make_it_inconclusive() -> None:
    # 5 requests/s: 50 per 10 s window, below the 100 p95 needs.
    result = evaluate(window_spec(0.9), windowed_run(set(), per_second=5)).results[0]
    assert (result.status, result.observed) == ("inconclusive", 0.0)
    assert result.detail == "0 good, 0 bad, 3 unmeasured of 3 windows"


def test_a_run_shorter_than_one_window_is_inconclusive() -> None:
    result = evaluate(window_spec(0.5), windowed_run(set(), seconds=9)).results[0]
    assert (result.status, result.observed) == ("inconclusive", None)


def test_windowed_throughput_counts_silent_seconds() -> None:
    seconds: list[Second] = [{"GET /a": ([5.0] * 20, 0)} for _ in range(20)]
    seconds[12:] = [{} for _ in range(8)]  # the target stalls in the second window
    results = from_raw(make_raw(seconds))
    criterion = {"metric": "rps", "above": 15, "window_seconds": 10, "min_fraction": 1}
    result = evaluate(spec(windows=[criterion]), results).results[0]
    assert (result.name, result.status, result.detail) == (
        "global rps > 15 in >= 100% of 10s windows",
        "fail",
        "1 good, 1 bad, 0 unmeasured of 2 windows",
    )


# --- abort ------------------------------------------------------------------------------


def window(t: int, requests: int, failures: int, key: str = "GET /a") -> Window:
    results = from_raw(make_raw([{key: ([5.0] * requests, failures)}]))
    w = results.windows[0]
    return Window(t, w.requests, w.failures, w.latency, w.users, w.endpoints)


ABORT = spec(
    **{"global": {"error_rate": 0.01}},
    abort=[{"metric": "error_rate", "above": 0.05, "for_seconds": 3}],
)


def test_abort_when_breach_held_for_the_whole_period() -> None:
    windows = [window(0, 10, 0), window(1, 10, 1), window(2, 10, 2), window(3, 10, 5)]
    assert abort_breached(ABORT, windows) == (
        "global error_rate > 0.05 held for 3s (last second: 0.5)"
    )


def test_no_abort_when_breach_is_shorter_than_the_period() -> None:
    windows = [window(0, 10, 1), window(1, 10, 0), window(2, 10, 2), window(3, 10, 5)]
    assert abort_breached(ABORT, windows) is None
    assert abort_breached(ABORT, windows[-2:]) is None  # seconds missing count as idle
    assert abort_breached(ABORT, [window(0, 10, 9), window(1, 10, 9)]) is None  # too young
    assert abort_breached(ABORT, []) is None


def test_abort_on_stalled_throughput_for_one_endpoint() -> None:
    stalled = spec(
        **{"global": {"error_rate": 0.01}},
        abort=[{"metric": "rps", "below": 5, "for_seconds": 2, "endpoint": "/a"}],
    )
    windows = [window(0, 10, 0), window(1, 10, 0), window(2, 2, 0, key="GET /b")]
    assert abort_breached(stalled, windows) is None  # second 1 still had 10/s on /a
    windows.append(window(3, 2, 0, key="GET /b"))
    assert abort_breached(stalled, windows) == "/a rps < 5 held for 2s (last second: 0)"


# --- the SLO file -----------------------------------------------------------------------

GOOD = """\
version: 1
global: {p95_ms: 300, p99_ms: 800, error_rate: 0.01, min_throughput_rps: 50}
endpoints:
  "GET /api/stats": {p95_ms: 500}
windows:
  - {metric: p95_ms, below: 200, window_seconds: 10, min_fraction: 0.95}
abort:
  - {metric: error_rate, above: 0.05, for_seconds: 10}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(text)
    return path


def test_load_slo_file(tmp_path: Path) -> None:
    assert load_slo_file(write(tmp_path, GOOD)) == SloSpec(
        version=1,
        global_=Thresholds(p95_ms=300, p99_ms=800, error_rate=0.01, min_throughput_rps=50),
        endpoints={"GET /api/stats": EndpointThresholds(p95_ms=500)},
        windows=[WindowCriterion(metric="p95_ms", below=200, window_seconds=10, min_fraction=0.95)],
        abort=[AbortCriterion(metric="error_rate", above=0.05, for_seconds=10)],
    )


BAD = """\
version: 1
globl: {p95_ms: 300}
endpoints:
  "GET /api/stats": {p95: 500, error_rate: 2}
windows:
  - {metric: p97_ms, below: 200, min_fraction: 0.95}
  - {metric: rps, below: 1, above: 2, min_fraction: 0.5}
  - {metric: p95_ms, below: 200}
abort:
  - {metric: min_throughput_rps, above: 1, for_seconds: 0}
"""


def test_every_problem_in_a_bad_slo_file_is_reported_with_its_position(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    with pytest.raises(InputError) as caught:
        load_slo_file(path)
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert caught.value.message == f"{path}: 8 problems"
    metrics = "'p50_ms', 'p90_ms', 'p95_ms', 'p99_ms', 'max_ms', 'mean_ms', 'error_rate' or 'rps'"
    assert caught.value.lines == (
        f"{path}:2:1 globl: unknown key; did you mean 'global'?",
        f"{path}:4:22 endpoints.GET /api/stats.p95: unknown key; did you mean 'p95_ms'?",
        f"{path}:4:44 endpoints.GET /api/stats.error_rate: must be less than or equal to 1",
        f"{path}:6:14 windows[0].metric: must be {metrics}",
        f"{path}:7:5 windows[1]: set exactly one of 'below' or 'above'",
        f"{path}:8:5 windows[2].min_fraction: required",
        f"{path}:10:14 abort[0].metric: must be {metrics}",
        f"{path}:10:57 abort[0].for_seconds: must be greater than or equal to 1",
    )


def test_slo_file_must_be_a_mapping_with_criteria(tmp_path: Path) -> None:
    path = write(tmp_path, "- version: 1\n")
    with pytest.raises(InputError, match=r"slo.yaml:1:1: an SLO file is a YAML mapping"):
        load_slo_file(path)
    path = write(tmp_path, "version: 1\nabort: []\n")
    with pytest.raises(InputError) as caught:
        load_slo_file(path)
    assert caught.value.message == (
        f"{path}:1:1: the SLO file sets no criteria; add 'global', 'endpoints', 'groups', "
        "'metrics' or 'windows'"
    )


def test_version_is_required_in_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, "global: {p95_ms: 0}\n")
    with pytest.raises(InputError) as caught:
        load_slo_file(path)
    assert caught.value.lines == (
        f"{path}:1:1 version: required",
        f"{path}:1:18 global.p95_ms: must be greater than 0",
    )


def test_an_empty_spec_has_no_slos_and_passes() -> None:
    assert evaluate(SloSpec(), uniform_run(n=10, seconds=1)).verdict == "pass"


def test_malformed_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"slo.yaml:2:1: malformed YAML"):
        load_slo_file(write(tmp_path, "version: 1\n- x\n"))
    with pytest.raises(InputError, match="no such file"):
        load_slo_file(tmp_path / "missing.yaml")


# --- from the plan ----------------------------------------------------------------------


def test_plan_defaults_map_to_global_thresholds() -> None:
    plan = load_plan(fixture_path("plans", "minimal.yaml")).plan
    assert from_plan(plan) == SloSpec(
        version=1, global_=Thresholds(p95_ms=300, p99_ms=1000, error_rate=0.01)
    )


def test_plan_latency_and_endpoint_overrides_map() -> None:
    plan = load_plan(fixture_path("plans", "minimal.yaml")).plan
    slo = Slo(
        availability=plan.slo.availability,
        latency=Latency(p50_ms=50, p90_ms=100, p95_ms=200, p99_ms=400, max_ms=2000),
        error_rate=0.001,
        min_throughput_rps=80,
        endpoints={
            "GET /api/stats": EndpointSlo(latency=Latency(p95_ms=500), error_rate=0.02),
            "POST /api/submissions": EndpointSlo(min_throughput_rps=5),
        },
    )
    spec_ = from_plan(plan.model_copy(update={"slo": slo}))
    assert spec_ == SloSpec(
        version=1,
        global_=Thresholds(
            p50_ms=50,
            p90_ms=100,
            p95_ms=200,
            p99_ms=400,
            max_ms=2000,
            error_rate=0.001,
            min_throughput_rps=80,
        ),
        endpoints={
            "GET /api/stats": EndpointThresholds(p95_ms=500, error_rate=0.02),
            "POST /api/submissions": EndpointThresholds(min_throughput_rps=5),
        },
    )
    names = [s.name for s in evaluate(spec_, two_endpoints_and_post()).results]
    assert names[-3:] == [
        "GET /api/stats p95_ms <= 500",
        "GET /api/stats error_rate <= 0.02",
        "POST /api/submissions min_throughput_rps >= 5",
    ]


def two_endpoints_and_post() -> Results:
    return from_raw(
        make_raw([{"GET /api/stats": ([5.0] * 10, 0), "POST /api/submissions": ([5.0], 0)}])
    )
