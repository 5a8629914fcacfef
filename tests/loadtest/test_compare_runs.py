"""`scalectl loadtest compare` and `history` on reports of real runs: three short runs against
the loopback test server, made once for the module and side by side (so they share the
machine's load): BASE, AGAIN (the same server and load) and SLOW (60 ms added to every
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
SLOW_MS = 60
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
        # The truth: every response 60 ms slower, so p95 moves from ~90 to ~150 ms. The
        # interval lies beyond the margin (10% of ~90 ms) and holds the truth.
        assert interval["margin"] < interval["low"] <= interval["diff"] <= interval["high"]
        assert interval["low"] <= SLOW_MS + 10 and interval["high"] >= SLOW_MS - 10, interval
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


def test_history_table_and_html_over_three_runs(
    cli: Cli, reports: dict[str, Path], tmp_path: Path
) -> None:
    root = reports["base"].parent  # a directory of report dirs
    page = tmp_path / "history.html"
    result = cli("loadtest", "history", root, "--html", page, "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    runs = data["runs"]
    assert sorted(Path(r["run"]).name for r in runs) == ["again", "base", "slow"]
    assert [r["started_at"] for r in runs] == sorted(r["started_at"] for r in runs)
    by_name = {Path(r["run"]).name: r for r in runs}
    for name in reports:
        report = json.loads((reports[name] / "report.json").read_text())
        assert by_name[name]["p95_ms"] == report["total"]["p95_ms"]
        assert by_name[name]["rps"] == report["total"]["rps"]
        assert by_name[name]["requests"] == report["total"]["requests"]
    assert by_name["slow"]["p95_ms"] > by_name["base"]["p95_ms"] + SLOW_MS / 2
    summary = data["summary"]["p95_ms"]
    assert summary["min"] <= summary["median"] <= summary["max"] == by_name["slow"]["p95_ms"]
    # The page: a chart each of latency, throughput and error rate, one point per run.
    html = page.read_text()
    for chart_id in ("chart-history-latency", "chart-history-throughput", "chart-history-errors"):
        svg = html[html.index(f'id="{chart_id}"') :]
        points = svg[svg.index('points="') + 8 :].split('"')[0]
        assert len(points.split()) == 3, (chart_id, points)
    assert "run (oldest first)" in html and html.count('<tr><td class="num">') == 3
    assert "http" not in html.replace("http-equiv", "")  # nothing fetched from elsewhere
    # The terminal table: one row per run, the endpoint asked for.
    table = cli("loadtest", "history", *(reports[n] for n in reports), "--endpoint", WORK)
    assert table.code == 0, table.stderr
    assert f"History: {WORK}" in table.stdout
    assert sum(name in table.stdout for name in reports) == 3
    assert "latest run against the median" in table.stdout


def test_malformed_reports_fail_in_one_line(
    cli: Cli, reports: dict[str, Path], tmp_path: Path
) -> None:
    def copy(name: str) -> Path:
        target = tmp_path / name
        target.mkdir()
        for f in ("report.json", "histograms.json"):
            (target / f).write_bytes((reports["base"] / f).read_bytes())
        return target

    def one_line_error(*args: str | Path) -> str:
        result = cli("loadtest", *args)
        assert result.code == ExitCode.BAD_INPUT, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        return lines[0]

    # A histogram of another layout (what a forged artefact could hold) is refused before
    # hdrh decodes it.
    forged = copy("forged")
    hists = json.loads((forged / "histograms.json").read_text())
    second = next(iter(hists["windows"]))
    from hdrh.histogram import HdrHistogram

    other = HdrHistogram(1, 2**40, 5)
    other.record_value(1000)
    hists["windows"][second][WORK][2] = other.encode().decode()
    (forged / "histograms.json").write_text(json.dumps(hists))
    assert "histogram layout" in one_line_error("compare", reports["base"], forged)
    # A second outside the run, and a file that is not the format at all.
    hists["windows"] = {"1": {}}
    (forged / "histograms.json").write_text(json.dumps(hists))
    assert "not a measured second" in one_line_error("compare", reports["base"], forged)
    (forged / "histograms.json").write_text("[]")
    assert "histograms.json" in one_line_error("compare", forged, reports["base"])
    # Truncated, nested past the parser's depth, not an object, not version 1.
    for name, text in [
        ("truncated", (reports["base"] / "report.json").read_text()[:500]),
        ("nested", "[" * 100_000 + "]" * 100_000),
        ("list", "[]"),
        ("version", '{"version": 2}'),
    ]:
        bad = copy(name)
        (bad / "report.json").write_text(text)
        assert str(bad) in one_line_error("history", reports["base"], bad)
    # More than the bound of reports.
    many = tmp_path / "many"
    for i in range(501):
        (many / f"r{i:03}").mkdir(parents=True)
        (many / f"r{i:03}" / "report.json").write_text("{}")
    assert "more than 500 reports" in one_line_error("history", many)
