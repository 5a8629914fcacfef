from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from scalectl.loadtest.evaluation import Evaluation, evaluate
from scalectl.loadtest.rawjson import from_raw
from scalectl.loadtest.reports import CSV_COLUMNS, write_reports
from scalectl.loadtest.results import Results
from scalectl.loadtest.slo import SloSpec
from tests.helpers.loadtest_runs import GENERATOR, META, make_raw


@pytest.fixture(scope="module")
def results() -> Results:
    # 4 seconds; /api/stats 25/s at 1..25 ms with one failure a second, /api/items 5/s.
    stats = [float(v) for v in range(1, 26)]
    return from_raw(
        make_raw(
            [{"GET /api/stats": (stats, 1), "GET /api/items": ([2.0] * 5, 0)} for _ in range(4)],
            errors={"500 Internal Server Error": 4, "ConnectionResetError": 1},
        )
    )


@pytest.fixture(scope="module")
def evaluation(results: Results) -> Evaluation:
    spec = SloSpec.model_validate(
        {
            "version": 1,
            "global": {"p50_ms": 100, "p99_ms": 100, "error_rate": 0.01},
            "endpoints": {"GET /api/items": {"min_throughput_rps": 4}},
        }
    )
    return evaluate(spec, results)


def test_evaluation_under_test(evaluation: Evaluation) -> None:
    assert [(s.name, s.status) for s in evaluation.results] == [
        ("global p50_ms <= 100", "pass"),
        ("global p99_ms <= 100", "inconclusive"),
        ("global error_rate <= 0.01", "fail"),
        ("GET /api/items min_throughput_rps >= 4", "pass"),
    ]


def write(tmp_path: Path, results: Results, evaluation: Evaluation, **kwargs: Any) -> list[Path]:
    return write_reports(tmp_path / "reports", results, evaluation, GENERATOR, META, **kwargs)


def test_writes_six_files_atomically(
    tmp_path: Path, results: Results, evaluation: Evaluation
) -> None:
    written = write(tmp_path, results, evaluation)
    names = [
        "report.json",
        "junit.xml",
        "summary.md",
        "timeseries.csv",
        "report.html",
        "histograms.json",
    ]
    assert written == [tmp_path / "reports" / n for n in names]
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == sorted(names)


def test_report_json_schema(tmp_path: Path, results: Results, evaluation: Evaluation) -> None:
    write(tmp_path, results, evaluation)
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert list(report) == [
        "version",
        "verdict",
        "reasons",
        "meta",
        "slos",
        "endpoints",
        "total",
        "generator",
        "load_model",
        "errors",
        "timeseries",
    ]
    assert report["load_model"] == {"type": "closed", "latency": "raw"}
    assert "raw" not in report["total"]  # only the open model has two latencies
    assert (report["version"], report["verdict"], report["reasons"]) == (1, "fail", [])
    assert report["meta"] == {
        **META,
        "started_at": "2023-11-14T22:13:20.000+00:00",
        "ended_at": "2023-11-14T22:13:24.000+00:00",
        "duration_s": 4.0,
        "warmup_s": 0.0,  # no warm-up: everything measured from the start
        "measured_from": "2023-11-14T22:13:20.000+00:00",
    }
    assert report["slos"][2] == {
        "name": "global error_rate <= 0.01",
        "scope": "global",
        "kind": "run",
        "metric": "error_rate",
        "comparator": "<=",
        "threshold": 0.01,
        "observed": 0.033333,
        "passed": False,
        "status": "fail",
        "detail": "",
    }
    assert report["slos"][1]["passed"] is False  # inconclusive is not a pass
    items = report["endpoints"][0]
    assert list(items) == [
        "key",
        "name",
        "method",
        "requests",
        "failures",
        "error_rate",
        "p50_ms",
        "p90_ms",
        "p95_ms",
        "p99_ms",
        "max_ms",
        "mean_ms",
        "rps",
    ]
    assert (items["key"], items["name"], items["method"]) == ("GET /api/items", "/api/items", "GET")
    assert (items["requests"], items["failures"], items["rps"]) == (20, 0, 5.0)
    assert items["p95_ms"] == pytest.approx(2.0, rel=1e-3)
    assert report["total"]["requests"] == 120
    assert report["generator"] == {
        "processes": 2,
        "requested_rps": None,
        "achieved_rps": 30.0,
        "cpu_percent_max": {"1": 40.0},
        "saturated": False,
    }
    assert report["errors"] == [
        {"message": "500 Internal Server Error", "count": 4},
        {"message": "ConnectionResetError", "count": 1},
    ]
    assert len(report["timeseries"]) == 4
    assert list(report["timeseries"][0]) == [
        "t",
        "users",
        "requests",
        "failures",
        "rps",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "warmup",
    ]
    assert report["timeseries"][3]["t"] == 3
    assert report["timeseries"][3]["requests"] == 30


def test_verdict_and_reasons_from_the_run_override(
    tmp_path: Path, results: Results, evaluation: Evaluation
) -> None:
    write(tmp_path, results, evaluation, verdict="inconclusive", reasons=["generator saturated"])
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert (report["verdict"], report["reasons"]) == ("inconclusive", ["generator saturated"])
    summary = (tmp_path / "reports" / "summary.md").read_text()
    assert summary.startswith("## scalectl loadtest: ⚠️ INCONCLUSIVE\n\n- generator saturated\n\n")


def test_junit_has_one_testcase_per_slo(
    tmp_path: Path, results: Results, evaluation: Evaluation
) -> None:
    write(tmp_path, results, evaluation)
    root = ET.parse(tmp_path / "reports" / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "scalectl loadtest"
    assert [suite.get(k) for k in ("tests", "failures", "skipped", "errors")] == [
        "4",
        "1",
        "1",
        "0",
    ]
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [s.name for s in evaluation.results]
    failure = cases[2].find("failure")
    assert failure is not None
    assert failure.get("message") == "threshold <= 1.00%, observed 3.33%"
    assert failure.text == "global error_rate <= 0.01: threshold <= 1.00%, observed 3.33%"
    skipped = cases[1].find("skipped")
    assert skipped is not None
    assert skipped.get("message", "").startswith("inconclusive: 120 samples, need 500; threshold")
    assert cases[0].find("failure") is None and cases[0].find("skipped") is None


def test_summary_markdown_and_github_step_summary(
    tmp_path: Path, results: Results, evaluation: Evaluation
) -> None:
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    write(tmp_path, results, evaluation, environ={"GITHUB_STEP_SUMMARY": str(step)})
    summary = (tmp_path / "reports" / "summary.md").read_text()
    lines = summary.splitlines()
    assert lines[:6] == [
        "## scalectl loadtest: ❌ FAIL",
        "",
        "120 requests, 4 failed (3.33%), 30.0/s over 4s; scenario browse,"
        " host http://127.0.0.1:8080, users 10, run_time 4s",
        "",
        "| SLO | Threshold | Observed | Result |",
        "| --- | ---: | ---: | --- |",
    ]
    assert "| global error_rate <= 0.01 | <= 1.00% | 3.33% | ❌ fail |" in lines
    assert "| GET /api/items min_throughput_rps >= 4 | >= 4.0/s | 5.0/s | ✅ pass |" in lines
    assert "| GET /api/items | 20 | 0 | 0.00% | 2.0 | 2.0 | 2.0 | 2.0 | 5.0 |" in lines
    assert lines[-1].startswith("| Aggregated | 120 | 4 | 3.33% |")
    assert step.read_text() == "earlier step\n" + summary + "\n"


def test_no_step_summary_without_the_variable(
    tmp_path: Path, results: Results, evaluation: Evaluation
) -> None:
    write(tmp_path, results, evaluation, environ={})
    assert not (tmp_path / "step.md").exists()


def test_timeseries_csv(tmp_path: Path, results: Results, evaluation: Evaluation) -> None:
    write(tmp_path, results, evaluation)
    text = (tmp_path / "reports" / "timeseries.csv").read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert (
        tuple(rows[0])
        == CSV_COLUMNS
        == (
            "t",
            "endpoint",
            "users",
            "requests",
            "failures",
            "rps",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "warmup",
        )
    )
    assert {r[-1] for r in rows[1:]} == {"0"}  # no warm-up asked: every second measured
    assert len(rows) == 1 + 4 * 3  # per second: Aggregated + two endpoints
    assert [r[:6] for r in rows[1:4]] == [
        ["0", "Aggregated", "10", "30", "1", "30"],
        ["0", "GET /api/items", "10", "5", "0", "5"],
        ["0", "GET /api/stats", "10", "25", "1", "25"],
    ]


def test_second_write_replaces_files(
    tmp_path: Path, results: Results, evaluation: Evaluation
) -> None:
    write(tmp_path, results, evaluation)
    write(tmp_path, results, evaluation, verdict="pass")
    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    assert report["verdict"] == "pass"
    assert len(list((tmp_path / "reports").iterdir())) == 6
