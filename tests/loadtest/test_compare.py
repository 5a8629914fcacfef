"""`scalectl loadtest compare`: synthetic report.json files in, statuses and exit codes out."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from scalectl.cli import run
from scalectl.loadtest.compare import load_report, parse_tolerance
from scalectl.loadtest.evaluation import evaluate
from scalectl.loadtest.rawjson import from_raw
from scalectl.loadtest.reports import write_reports
from scalectl.loadtest.slo import SloSpec
from tests.helpers.loadtest_runs import GENERATOR, META, make_raw

STATS = "GET /api/stats"


def endpoint(
    name: str = "/api/stats",
    *,
    requests: int = 1000,
    p50: float = 10.0,
    p95: float = 100.0,
    p99: float = 200.0,
    failures: int = 0,
    rps: float = 50.0,
    method: str = "GET",
) -> dict[str, Any]:
    return {
        "key": f"{method} {name}",
        "name": name,
        "method": method,
        "requests": requests,
        "failures": failures,
        "error_rate": failures / requests if requests else 0.0,
        "p50_ms": p50,
        "p90_ms": p95,
        "p95_ms": p95,
        "p99_ms": p99,
        "max_ms": p99,
        "mean_ms": p50,
        "rps": rps,
    }


def write(path: Path, *endpoints: dict[str, Any], total: dict[str, Any] | None = None) -> Path:
    """A report dir holding report.json with the given endpoints (total: the first one)."""
    eps = list(endpoints) or [endpoint()]
    total = total or {**eps[0], "key": "Aggregated", "name": "Aggregated", "method": ""}
    data = {"version": 1, "verdict": "pass", "endpoints": eps, "total": total, "timeseries": []}
    path.mkdir(parents=True, exist_ok=True)
    (path / "report.json").write_text(json.dumps(data))
    return path


def compare(*args: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(
        ["loadtest", "compare", *(str(a) for a in args)],
        environ={"NO_COLOR": "1"},
        stdout=out,
        stderr=err,
    )
    return code, out.getvalue(), err.getvalue()


def statuses(*args: str | Path) -> tuple[int, dict[tuple[str, str], str]]:
    code, out, _ = compare(*args, "--json")
    data = json.loads(out)
    return code, {(r["endpoint"], r["metric"]): r["status"] for r in data["rows"]}


def test_identical_reports_pass(tmp_path: Path) -> None:
    base = write(tmp_path / "base")
    code, rows = statuses(base, base / "report.json")
    assert code == 0
    assert set(rows.values()) == {"ok"}
    assert list(rows) == [
        (key, metric)
        for key in (STATS, "Aggregated")
        for metric in ("p50_ms", "p95_ms", "p99_ms", "error_rate", "rps")
    ]


def test_p95_up_50_percent_regresses_with_the_numbers(tmp_path: Path) -> None:
    base = write(tmp_path / "base", endpoint(p95=100.0))
    new = write(tmp_path / "new", endpoint(p95=150.0))
    code, out, err = compare(base, new)
    assert code == 5
    row = next(line for line in out.splitlines() if "p95_ms" in line and STATS in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells == ["GET /api/stats", "p95_ms", "100.0", "150.0", "+50.0%", "regressed"]
    assert err == "error: 2 metrics regressed: GET /api/stats p95_ms, Aggregated p95_ms\n"
    _, rows = statuses(base, new)
    assert rows[(STATS, "p95_ms")] == "regressed"
    assert rows[(STATS, "p50_ms")] == "ok"


def test_within_tolerance_passes_and_improvement_is_shown(tmp_path: Path) -> None:
    base = write(tmp_path / "base", endpoint(p95=100.0, p50=10.0))
    new = write(tmp_path / "new", endpoint(p95=105.0, p50=5.0))
    code, rows = statuses(base, new)
    assert code == 0
    assert rows[(STATS, "p95_ms")] == "ok"
    assert rows[(STATS, "p50_ms")] == "improved"  # -50% and 5 ms > the 2 ms floor


def test_tolerance_and_floor_are_options(tmp_path: Path) -> None:
    base = write(tmp_path / "base", endpoint(p50=1.0, p95=100.0))
    new = write(tmp_path / "new", endpoint(p50=2.5, p95=105.0))
    # p50 +150% but only 1.5 ms: under the 2 ms floor
    code, rows = statuses(base, new, "--tolerance", "2%")
    assert (code, rows[(STATS, "p50_ms")], rows[(STATS, "p95_ms")]) == (5, "ok", "regressed")
    code, rows = statuses(base, new, "--min-delta-ms", "1", "--tolerance", "0.1")
    assert (code, rows[(STATS, "p50_ms")], rows[(STATS, "p95_ms")]) == (5, "regressed", "ok")


def test_few_samples_are_insufficient_not_regressed(tmp_path: Path) -> None:
    base = write(tmp_path / "base", endpoint(requests=80, p95=100.0, p99=200.0))
    new = write(tmp_path / "new", endpoint(requests=80, p95=300.0, p99=900.0))
    code, out, _ = compare(base, new)
    assert code == 0
    assert "insufficient (80 samples, need 100)" in out
    _, rows = statuses(base, new)
    assert rows[(STATS, "p95_ms")] == rows[(STATS, "p99_ms")] == "insufficient"
    assert rows[(STATS, "p50_ms")] == "ok"


def test_p99_needs_500_samples(tmp_path: Path) -> None:
    base = write(tmp_path / "base", endpoint(requests=400, p99=200.0))
    new = write(tmp_path / "new", endpoint(requests=400, p99=400.0))
    code, rows = statuses(base, new)
    assert (code, rows[(STATS, "p99_ms")], rows[(STATS, "p95_ms")]) == (0, "insufficient", "ok")


def test_error_rate_and_throughput_regress(tmp_path: Path) -> None:
    base = write(tmp_path / "base", endpoint(failures=0, rps=50.0))
    new = write(tmp_path / "new", endpoint(failures=30, rps=40.0))
    code, rows = statuses(base, new)
    assert code == 5
    assert rows[(STATS, "error_rate")] == "regressed"
    assert rows[(STATS, "rps")] == "regressed"
    # one failure in 1000 is within the 0.1 point floor
    code, rows = statuses(base, write(tmp_path / "one", endpoint(failures=1)))
    assert (code, rows[(STATS, "error_rate")]) == (0, "ok")


def test_repeat_runs_noisy_base_range_covers_new(tmp_path: Path) -> None:
    runs = [write(tmp_path / f"base-{i}", endpoint(p95=p)) for i, p in enumerate((90, 100, 130))]
    new = write(tmp_path / "new", endpoint(p95=135.0))
    # One base run: +35% is a regression; three noisy ones reach 130, +10% of that is 143.
    assert statuses(runs[1], new)[0] == 5
    code, rows = statuses(",".join(str(r) for r in runs), new)
    assert (code, rows[(STATS, "p95_ms")]) == (0, "ok")
    code, rows = statuses(str(tmp_path / "base-*"), new)
    assert (code, rows[(STATS, "p95_ms")]) == (0, "ok")
    # NEW's median counts, not its worst run
    news = [write(tmp_path / f"new-{i}", endpoint(p95=p)) for i, p in enumerate((150, 150, 120))]
    code, rows = statuses(str(tmp_path / "base-*"), str(tmp_path / "new-*"))
    assert (code, rows[(STATS, "p95_ms")]) == (5, "regressed")
    code, out, _ = compare(str(tmp_path / "base-*"), ",".join(str(n) for n in news))
    assert "100.0 (90.0–130.0)" in out


def test_endpoints_on_one_side_are_listed_not_failed(tmp_path: Path) -> None:
    items = endpoint("/api/items")
    base = write(tmp_path / "base", endpoint(), items)
    new = write(tmp_path / "new", endpoint(), endpoint("/api/new", method="POST"))
    code, out, _ = compare(base, new, "--json")
    data = json.loads(out)
    assert (code, data["added"], data["removed"]) == (0, ["POST /api/new"], ["GET /api/items"])
    code, out, _ = compare(base, new)
    assert "added (only in NEW): POST /api/new" in out
    assert "removed (only in BASE): GET /api/items" in out


def test_malformed_report_is_one_line_exit_2(tmp_path: Path) -> None:
    base = write(tmp_path / "base")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out, err = compare(base, bad)
    assert (code, out) == (2, "")
    assert err == (
        f"error: {bad}: not valid JSON (line 1 column 2:"
        " Expecting property name enclosed in double quotes)\n"
    )


def test_bad_inputs_exit_2(tmp_path: Path) -> None:
    base = write(tmp_path / "base")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"version": 1, "endpoints": [{"name": "/x", "method": "GET"}]}))
    other = write(tmp_path / "other", endpoint("/other"))
    (tmp_path / "empty").mkdir()
    cases = {
        str(wrong): f"{wrong}: not a scalectl report.json: endpoints[0].requests must be a whole"
        " number >= 0",
        str(tmp_path / "missing"): f"{tmp_path / 'missing'}: no such file or directory",
        str(tmp_path / "empty"): f"{tmp_path / 'empty'}: no report.json in this directory",
        str(tmp_path / "nope-*"): f"{tmp_path / 'nope-*'}: matches no report",
        str(other): "BASE and NEW have no endpoint in common (in every run): nothing to compare",
    }
    for arg, message in cases.items():
        code, _, err = compare(base, arg)
        assert (code, err) == (2, f"error: {message}\n"), arg
    code, _, err = compare(base, base, "--tolerance", "10")
    assert (code, err) == (2, "error: --tolerance 10: expected a percentage such as 10% (or 0.1)\n")


def test_parse_tolerance() -> None:
    assert parse_tolerance("10%") == 0.1
    assert parse_tolerance("0.05") == 0.05
    assert parse_tolerance("0%") == 0.0


def test_reads_a_report_written_by_write_reports(tmp_path: Path) -> None:
    # The real writer's output, not only our synthetic dicts.
    results = from_raw(make_raw([{STATS: ([float(v) for v in range(1, 26)], 0)}] * 4))
    write_reports(tmp_path, results, evaluate(SloSpec(), results), GENERATOR, META)
    report = load_report(tmp_path / "report.json")
    assert list(report.endpoints) == [STATS]
    assert report.total.requests == 100
    code, rows = statuses(tmp_path, tmp_path)
    assert code == 0
    assert rows[(STATS, "p99_ms")] == "insufficient"


def test_reports_without_histograms_keep_the_tolerance_alone(tmp_path: Path) -> None:
    # Reports written before histograms.json existed: no interval, the rules as they were.
    base = write(tmp_path / "base")
    new = write(tmp_path / "new", endpoint(p95=150.0))
    code, out, _ = compare(base, new, "--json")
    data = json.loads(out)
    assert code == 5
    assert data["interval_note"].startswith("no interval: no histograms.json beside")
    assert {r["interval"] for r in data["rows"]} == {None}
    code, out, _ = compare(base, new)
    assert "95%" not in out and "no histograms.json" in out
