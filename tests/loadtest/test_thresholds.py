"""SLO thresholds beyond percentiles: the mean (globally, per endpoint, per window), a
scenario's custom metrics (`metrics`, request_type METRIC), and groups of endpoints chosen by
glob or regex (`groups`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scalectl.errors import ExitCode, InputError
from scalectl.loadtest.evaluation import evaluate
from scalectl.loadtest.rawjson import from_raw
from scalectl.loadtest.results import Results
from scalectl.loadtest.runlength import short_of_samples
from scalectl.loadtest.slo import SloSpec, load_slo_file
from tests.conftest import Result, fixture_path
from tests.helpers.input_files import slo_file
from tests.helpers.loadtest_runs import make_raw
from tests.loadtest.server import no_locust_left, serve

Cli = Callable[..., Result]
METRICS = fixture_path("locust", "metrics.py")


def spec(**kwargs: Any) -> SloSpec:
    return SloSpec.model_validate({"version": 1, **kwargs})


def outcome(spec_: SloSpec, results: Results) -> list[tuple[str, float | None, str]]:
    return [(s.name, s.observed, s.status) for s in evaluate(spec_, results).results]


def run_of(per_key: dict[str, list[float]], *, failures: dict[str, int] | None = None) -> Results:
    """One second holding exactly these values per "METHOD name"."""
    second = {key: (values, (failures or {}).get(key, 0)) for key, values in per_key.items()}
    return from_raw(make_raw([second]))


# A skewed endpoint: median 10 ms, mean 100 ms (one in ten takes 910 ms).
SKEWED = [10.0] * 90 + [910.0] * 10


def test_mean_and_median_gate_globally_and_per_endpoint() -> None:
    results = run_of({"GET /a": SKEWED, "GET /b": [20.0] * 100})
    got = outcome(
        spec(
            **{"global": {"mean_ms": 50, "p50_ms": 25}},
            endpoints={"GET /a": {"mean_ms": 150}, "/b": {"mean_ms": 19}},
        ),
        results,
    )
    assert got[0][0] == "global p50_ms <= 25" and got[0][2] == "pass"
    # The median hides the slow tenth; the mean does not.
    assert got[1][0] == "global mean_ms <= 50" and got[1][2] == "fail"
    assert got[1][1] == pytest.approx(60, rel=0.01)  # (100 + 20) / 2
    assert got[2][0] == "GET /a mean_ms <= 150" and got[2][2] == "pass"
    assert got[2][1] == pytest.approx(100, rel=0.01)
    assert got[3][:1] == ("GET /b mean_ms <= 19",) and got[3][2] == "fail"


def test_mean_needs_as_many_samples_as_the_median() -> None:
    results = run_of({"GET /a": [5.0] * 19})
    [(_, _, status)] = outcome(spec(**{"global": {"mean_ms": 10}}), results)
    assert status == "inconclusive"
    assert short_of_samples(spec(**{"global": {"mean_ms": 10}}), {}, 19) == [
        "global 19 of 20 (mean_ms)"
    ]


def test_windowed_mean_is_exact() -> None:
    # Two seconds: 90 x 10 ms then 10 x 910 ms. Per window of 2 s the mean is 100 ms,
    # though neither second's mean is (10 and 910).
    raw = make_raw([{"GET /a": ([10.0] * 90, 0)}, {"GET /a": ([910.0] * 10, 0)}])
    window = {"metric": "mean_ms", "below": 101, "window_seconds": 2, "min_fraction": 1}
    [(name, observed, status)] = outcome(spec(windows=[window]), from_raw(raw))
    assert name == "global mean_ms < 101 in >= 100% of 2s windows"
    assert (observed, status) == (1.0, "pass")


def _metric_run() -> Results:
    # "METRIC queue depth": values 1..100 in the metric's own unit, beside real requests.
    return run_of({"GET /a": [10.0] * 50, "METRIC queue depth": [float(v) for v in range(1, 101)]})


def test_custom_metrics_are_gated_in_their_own_unit_and_kept_out_of_the_aggregate() -> None:
    results = _metric_run()
    assert results.total.requests == 50  # the metric's 100 values are not requests
    assert results.total.latency.max_ms == pytest.approx(10, rel=0.01)
    limits = {"queue depth": {"max": 90, "mean": 60, "p50": 55}}
    got = outcome(spec(metrics=limits), results)
    assert [(n, s) for n, _, s in got] == [
        ("METRIC queue depth p50 <= 55", "pass"),
        ("METRIC queue depth max <= 90", "fail"),
        ("METRIC queue depth mean <= 60", "pass"),
    ]
    assert got[1][1] == pytest.approx(100, rel=0.01) and got[2][1] == pytest.approx(50.5, 0.01)
    evaluation = evaluate(spec(metrics=limits), results)
    # No unit: it is the metric's own. HDR keeps 3 significant digits; the max is its
    # bucket's upper end.
    assert evaluation.results[1].observed_text == "100.031"


def test_a_metric_never_fired_is_an_input_error() -> None:
    with pytest.raises(InputError) as exc:
        evaluate(spec(metrics={"queue dept": {"max": 1}}), _metric_run())
    assert "metrics 'queue dept': never fired; did you mean 'queue depth'?" in exc.value.lines


def test_groups_by_glob_and_regex_merge_their_endpoints() -> None:
    results = run_of(
        {
            "GET /api/a": [10.0] * 100,
            "GET /api/b": [30.0] * 100,
            "POST /api/a": [500.0] * 100,
            "GET /health": [1.0] * 100,
            "METRIC /api/x": [9999.0] * 100,  # a metric is never in a group
        },
        failures={"GET /api/b": 10},
    )
    groups = {
        "reads": {"match": "GET /api/*", "p95_ms": 40, "mean_ms": 25, "error_rate": 0.04},
        "writes": {"regex": "^(POST|PUT|DELETE) ", "p50_ms": 400},
    }
    got = outcome(spec(groups=groups), results)
    assert [(n, s) for n, _, s in got] == [
        ("group reads p95_ms <= 40", "pass"),
        ("group reads mean_ms <= 25", "pass"),
        ("group reads error_rate <= 0.04", "fail"),
        ("group writes p50_ms <= 400", "fail"),
    ]
    # Merged histograms, not averaged percentiles: 200 samples of which half are 30 ms.
    assert got[0][1] == pytest.approx(30, rel=0.01)
    assert got[1][1] == pytest.approx(20, rel=0.01)
    assert got[2][1] == pytest.approx(0.05)
    counts = {"GET /api/a": 50, "GET /api/b": 49, "POST /api/a": 5}
    assert short_of_samples(spec(groups=groups), counts, 104) == [
        "group reads 99 of 100 (p95_ms)",
        "group writes 5 of 20 (p50_ms)",
    ]


def test_a_group_matching_nothing_is_an_input_error() -> None:
    with pytest.raises(InputError) as exc:
        evaluate(spec(groups={"w": {"match": "PUT *", "p95_ms": 1}}), _metric_run())
    assert "groups 'w': match PUT * matches no endpoint" in exc.value.lines


def test_bad_groups_and_metrics_in_a_file_are_reported_where_they_are(tmp_path: Path) -> None:
    path = slo_file(
        tmp_path,
        "version: 1\n"
        "groups:\n"
        "  both: {match: 'GET *', regex: 'x', p95_ms: 1}\n"
        "  broken: {regex: '(', p95_ms: 1}\n"
        "metrics:\n"
        "  depth: {max_ms: 1}\n",
    )
    with pytest.raises(InputError) as exc:
        load_slo_file(path)
    text = "\n".join(exc.value.lines)
    assert f"{path}:3:" in text and "exactly one of 'match'" in text
    assert f"{path}:4:" in text and "regex:" in text
    assert f"{path}:6:" in text and "max_ms" in text, text


@pytest.mark.stack
def test_a_locustfile_gates_its_own_metric_and_a_group(cli: Cli, tmp_path: Path) -> None:
    # The locustfile fires 'METRIC queue depth' with values cycling 1..10 beside its HTTP
    # requests; /known takes 10..100 ms (mean 55), /flaky fails one in ten.
    slo = slo_file(
        tmp_path,
        "version: 1\n"
        "global: {mean_ms: 500}\n"
        "groups:\n"
        "  known: {regex: '^GET /kno', mean_ms: 40}\n"
        "metrics:\n"
        "  queue depth: {max: 10.01, mean: 5.6}\n",
    )
    with serve() as url:
        result = cli(
            "loadtest", METRICS, "-H", url, "-u", "4", "-t", "4s", "--processes", "1",
            "--slo", slo, "--report-dir", tmp_path / "r",
        )  # fmt: skip
        assert no_locust_left(url)
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    slos = {s["name"]: s for s in report["slos"]}
    depth_max = slos["METRIC queue depth max <= 10.01"]
    assert depth_max["status"] == "pass" and depth_max["observed"] == pytest.approx(10, 0.01)
    depth_mean = slos["METRIC queue depth mean <= 5.6"]
    assert depth_mean["observed"] == pytest.approx(5.5, abs=0.5), depth_mean
    known = slos["group known mean_ms <= 40"]
    assert known["status"] == "fail" and known["observed"] >= 55, known
    endpoints = {e["key"]: e for e in report["endpoints"]}
    assert report["total"]["requests"] == endpoints["GET /known"]["requests"]
    assert result.code == ExitCode.CHECK_FAILED, result.stdout + result.stderr
