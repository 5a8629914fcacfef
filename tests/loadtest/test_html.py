"""report.html: self-contained, charts drawn from the per-second windows, and it renders
in headless Chromium without console errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from scalectl.loadtest.evaluation import Evaluation, evaluate
from scalectl.loadtest.html import report_html
from scalectl.loadtest.rawjson import from_raw
from scalectl.loadtest.reports import report_data, write_reports
from scalectl.loadtest.results import Results
from scalectl.loadtest.slo import SloSpec
from tests.helpers.loadtest_runs import make_raw
from tests.helpers.report_page import open_in_chromium, parse

SECONDS = 6
EVIL = "GET /api/<script>alert(1)</script>&x"
META = {
    "scenario": "browse <b>",
    "host": "http://127.0.0.1:8080",
    "users": 10,
    "run_time": f"{SECONDS}s",
}
GENERATOR = {"processes": 2, "cpu_percent_max": {"1": 40.0}, "saturated": False}
CHART_IDS = ("chart-throughput", "chart-latency", "chart-errors")


@pytest.fixture(scope="module")
def results() -> Results:
    stats = [float(v) for v in range(1, 26)]
    return from_raw(
        make_raw(
            [
                {
                    "GET /api/stats": (stats, i % 2),
                    "GET /api/items": ([2.0 + i] * 5, 0),
                    EVIL: ([3.0], 0),
                }
                for i in range(SECONDS)
            ],
            errors={"500 <Internal> Server Error": 3},
        )
    )


@pytest.fixture(scope="module")
def evaluation(results: Results) -> Evaluation:
    spec = SloSpec.model_validate(
        {"version": 1, "global": {"p50_ms": 100, "p99_ms": 100, "error_rate": 0.01}}
    )
    return evaluate(spec, results)


@pytest.fixture(scope="module")
def data(results: Results, evaluation: Evaluation) -> dict[str, Any]:
    return report_data(results, evaluation, GENERATOR, META)


@pytest.fixture(scope="module")
def page(data: dict[str, Any]) -> str:
    return report_html(data)


def test_charts_have_a_point_per_window(page: str, data: dict[str, Any]) -> None:
    parsed = parse(page)
    windows = len(data["timeseries"])
    assert windows == SECONDS
    expected = {
        "chart-throughput": {"rps", "users"},
        "chart-latency": {"p50", "p95", "p99"},
        "chart-errors": {"failures"},
    }
    for chart_id, series in expected.items():
        svg = parsed.attrs_by_id[chart_id]
        assert svg["role"] == "img"
        assert svg["aria-label"]
        lines = parsed.polylines[chart_id]
        assert {line["data-series"] for line in lines} == series
        for line in lines:
            assert len(str(line["points"]).split()) == windows


def test_points_follow_the_data(page: str, data: dict[str, Any]) -> None:
    # failures alternate 0, 1 per second: the errors line zig-zags between two heights.
    (line,) = parse(page).polylines["chart-errors"]
    ys = [float(p.split(",")[1]) for p in str(line["points"]).split()]
    assert [w["failures"] for w in data["timeseries"]] == [i % 2 for i in range(SECONDS)]
    assert ys[0] == ys[2] == ys[4] > ys[1] == ys[3] == ys[5]


def test_tables_list_every_endpoint_and_slo(page: str, data: dict[str, Any]) -> None:
    parsed = parse(page)
    endpoint_cells = parsed.cells["endpoint-table"]
    for e in [*data["endpoints"], data["total"]]:
        assert e["key"] in endpoint_cells
    assert EVIL in endpoint_cells  # shown as text ...
    slo_cells = parsed.cells["slo-table"]
    for s in data["slos"]:
        assert s["name"] in slo_cells
    assert "500 <Internal> Server Error" in parsed.cells["error-table"]


def test_user_strings_are_escaped(page: str) -> None:
    assert "<script>alert(1)" not in page  # ... never as markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;x" in page
    assert "browse <b>" not in page


def test_embedded_json_round_trips(page: str, data: dict[str, Any]) -> None:
    blob = parse(page).scripts["report-data"]
    assert "</script" not in blob.lower()
    assert json.loads(blob) == data


def test_self_contained(page: str) -> None:
    parsed = parse(page)
    assert all(u.startswith(("data:", "#")) for u in parsed.urls), parsed.urls
    assert not re.search(r"url\(|@import", page)
    assert not re.search(r"<(script|img|iframe|link)[^>]*\s(src|href)=[\"']?(https?:)?//", page)
    # the only http:// is the target host, as text
    assert re.findall(r"https?://[^\s<\"]*", page) == ["http://127.0.0.1:8080"] * 2


def test_empty_run_renders(results: Results, evaluation: Evaluation) -> None:
    empty = from_raw(make_raw([]))
    data = report_data(empty, evaluate(SloSpec.model_validate({"version": 1}), empty), {}, {})
    parsed = parse(report_html(data))
    assert set(CHART_IDS) <= parsed.ids
    assert not parsed.polylines


def test_write_reports_writes_report_html(
    tmp_path: Path, results: Results, evaluation: Evaluation
) -> None:
    written = write_reports(tmp_path, results, evaluation, GENERATOR, META)
    assert tmp_path / "report.html" in written
    assert set(CHART_IDS) <= parse((tmp_path / "report.html").read_text()).ids


# --- headless Chromium ------------------------------------------------------------------


def test_chromium_renders_report(tmp_path: Path, page: str, data: dict[str, Any]) -> None:
    html = tmp_path / "report.html"
    html.write_text(page, encoding="utf-8")
    dom, console = open_in_chromium(html, tmp_path)
    assert console == []
    parsed = parse(dom)
    assert set(CHART_IDS) <= parsed.ids
    for chart_id in CHART_IDS:
        assert parsed.polylines[chart_id]
    for e in data["endpoints"]:
        assert e["key"] in parsed.cells["endpoint-table"]
    assert json.loads(parsed.scripts["report-data"]) == data


def test_chromium_detector_catches_page_errors(tmp_path: Path, page: str) -> None:
    html = tmp_path / "broken.html"
    html.write_text(
        page.replace("</body>", "<script>throw new Error('injected-by-test')</script></body>"),
        encoding="utf-8",
    )
    _, console = open_in_chromium(html, tmp_path)
    assert any("Uncaught" in line and "injected-by-test" in line for line in console), console
