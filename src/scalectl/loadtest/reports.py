"""Report files of one load-test run: report.json, junit.xml, summary.md (loadtest.summary),
timeseries.csv, report.html (loadtest.html), and histograms.json (loadtest.windowfile) for
`loadtest compare`.

Formats are documented field by field in docs/loadtest.md; keep the two in step. Every
file is written to a temporary sibling and moved into place, so a reader never sees half.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scalectl import junit
from scalectl.files import write_file
from scalectl.loadtest.checks import CheckTally
from scalectl.loadtest.evaluation import Evaluation, SloResult, Verdict
from scalectl.loadtest.html import report_html
from scalectl.loadtest.results import Endpoint, Latency, Results
from scalectl.loadtest.runner import RunConfig, Shape
from scalectl.loadtest.summary import AGGREGATED, META_KEYS, summary_markdown
from scalectl.loadtest.windowfile import HISTOGRAMS_FILE, histograms_data

REPORT_VERSION = 1
TOP_ERRORS = 10
CSV_COLUMNS = (
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


def write_reports(
    report_dir: Path,
    results: Results,
    evaluation: Evaluation,
    generator: Mapping[str, Any],
    meta: Mapping[str, Any],
    *,
    verdict: Verdict | None = None,
    reasons: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write the six reports into `report_dir` (created if needed) and return their paths.

    `verdict` overrides `evaluation.verdict` when the run itself decides (a saturated
    generator, an abort), with `reasons` saying why. When `environ` has
    GITHUB_STEP_SUMMARY, summary.md is also appended to that file.
    """
    verdict = verdict or evaluation.verdict
    report_dir.mkdir(parents=True, exist_ok=True)
    summary = summary_markdown(results, evaluation, meta, verdict=verdict, reasons=reasons)
    data = report_data(results, evaluation, generator, meta, verdict=verdict, reasons=reasons)
    files = {
        "report.json": json.dumps(data, indent=2, allow_nan=False) + "\n",
        "junit.xml": junit_xml(results, evaluation),
        "summary.md": summary,
        "timeseries.csv": timeseries_csv(results),
        "report.html": report_html(data),
        # Compact: an hour's run holds thousands of histograms.
        HISTOGRAMS_FILE: json.dumps(histograms_data(results), separators=(",", ":")) + "\n",
    }
    written = []
    for name, text in files.items():
        path = report_dir / name
        write_file(path, text.encode("utf-8"))
        written.append(path)
    step_summary = (environ or {}).get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(summary + "\n")
    return written


# --- report.json ------------------------------------------------------------------------


def run_meta(
    config: RunConfig,
    shape: Shape | None = None,
    results: Results | None = None,
    *,
    auto: bool = False,
) -> dict[str, Any]:
    """report.json's `meta` as the run was asked for: scenario, host, load and length. With a
    LoadTestShape that ignored -u, -r and -t (as Locust does), not those: the shape's class
    name, the run time it actually took (from `results`) and the bound it had. With `auto`
    (-t auto), the run time reads `auto (<as taken>s)`."""
    meta: dict[str, Any] = {
        "scenario": str(config.locustfile),
        "host": config.host,
        "users": config.users,
        "spawn_rate": config.spawn_rate,
        "run_time": f"{config.run_time_seconds}s",
        "processes": config.processes,
        "rate": config.rate,
    }
    if config.rate_stages is not None:
        meta["rate_stages"] = config.rate_stages.label()
    took = results.run_duration if results is not None else None
    if auto:
        meta["run_time"] = "auto" + ("" if took is None else f" ({took:.1f}s)")
    if shape is not None:
        meta["shape"] = shape.name
        meta["max_run_time"] = f"{config.max_run_time_seconds}s"
        meta["shape_cut"] = shape.cut
        if not shape.common_options:
            meta["users"] = meta["spawn_rate"] = None
            meta["run_time"] = None if took is None else f"{took:.1f}s"
    return meta


def report_data(
    results: Results,
    evaluation: Evaluation,
    generator: Mapping[str, Any],
    meta: Mapping[str, Any],
    *,
    verdict: Verdict | None = None,
    reasons: Sequence[str] = (),
) -> dict[str, Any]:
    """report.json as a dict, keys in documented order; `checks` and the endpoints' check
    counts only when the SLO file declared checks."""
    checked = bool(evaluation.checks)
    return {
        "version": REPORT_VERSION,
        "verdict": verdict or evaluation.verdict,
        "reasons": list(reasons),
        "meta": _meta(results, meta),
        "slos": [_slo(s) for s in evaluation.results],
        **({"checks": [_check(c) for c in evaluation.checks]} if checked else {}),
        "endpoints": [_endpoint(e, results, checked) for e in results.endpoints],
        "total": _endpoint(results.total, results, checked),
        "generator": _generator(results, generator),
        "load_model": _load_model(results, generator),
        "errors": [
            {"message": message, "count": count}
            for message, count in sorted(results.total.errors.items(), key=lambda i: (-i[1], i[0]))[
                :TOP_ERRORS
            ]
        ],
        "timeseries": [
            {
                "t": w.t,
                "users": w.users,
                "requests": w.requests,
                "failures": w.failures,
                "rps": float(w.requests),
                **_percentiles(w.latency),
                "warmup": w.warmup,
            }
            for w in results.windows
        ],
    }


def _meta(results: Results, meta: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: meta.get(key) for key in META_KEYS}
    out["started_at"] = _iso(results.started_at)
    out["ended_at"] = _iso(results.ended_at)
    out["duration_s"] = round(results.duration, 3)
    # The warm-up asked for, and where the measured part (every figure above) starts.
    out["warmup_s"] = results.warmup
    out["measured_from"] = _iso(results.measured_start)
    out.update({k: meta[k] for k in sorted(meta) if k not in out})
    return out


def _generator(results: Results, generator: Mapping[str, Any]) -> dict[str, Any]:
    """processes, requested_rps, achieved_rps first; then the runner's own keys, sorted."""
    out = {
        "processes": generator.get("processes"),
        "requested_rps": generator.get("requested_rps"),
        "achieved_rps": generator.get("achieved_rps", round(results.total.rps, 3)),
    }
    # A ramping rate's stages are the load model's (load_model.stages).
    out.update({k: generator[k] for k in sorted(generator) if k not in out and k != "stages"})
    return out


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _slo(s: SloResult) -> dict[str, Any]:
    return {
        "name": s.name,
        "scope": s.scope,
        "kind": s.kind,
        "metric": s.metric,
        "comparator": s.comparator,
        "threshold": s.threshold,
        "observed": s.observed,
        "passed": s.passed,
        "status": s.status,
        "detail": s.detail,
    }


def _check(c: CheckTally) -> dict[str, Any]:
    rate = c.rate
    return {
        "check": c.check,
        "scope": c.scope,
        "endpoint": c.endpoint,
        "passed": c.passed,
        "failed": c.failed,
        "rate": None if rate is None else round(rate, 6),
    }


def _endpoint(e: Endpoint, results: Results, checked: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": e.key,
        "name": e.name,
        "method": e.method,
        "requests": e.requests,
        "failures": e.failures,
        "error_rate": round(e.error_rate, 6),
        **_percentiles(e.latency, full=True),
        "rps": round(e.rps, 3),
    }
    if checked:
        out["checks_passed"], out["checks_failed"] = e.checks_passed, e.checks_failed
    if results.open is not None:
        raw = results.open.raw.get(e.key)
        out["raw"] = _percentiles(raw, full=True) if raw else None
    return out


def _load_model(results: Results, generator: Mapping[str, Any]) -> dict[str, Any]:
    stats = results.open
    if stats is None:
        return {"type": "closed", "latency": "raw"}
    return {
        "type": "open",
        "latency": "corrected",
        "requested_rate": generator.get("requested_rps"),
        "achieved_rate": generator.get("achieved_rps"),
        "rate_per_user": round(stats.user_rate, 6),
        "arrivals": stats.total_arrivals,
        "late": stats.late,
        "dropped": stats.dropped,
        "max_lag_ms": stats.max_lag_ms,
        **({"stages": generator["stages"]} if "stages" in generator else {}),
    }


def _percentiles(latency: Latency, *, full: bool = False) -> dict[str, float | None]:
    names = ("p50", "p90", "p95", "p99", "max", "mean") if full else ("p50", "p95", "p99")
    return {f"{n}_ms": latency.get(n) for n in names}


# --- junit.xml --------------------------------------------------------------------------


def junit_xml(results: Results, evaluation: Evaluation) -> str:
    """One testcase per SLO: a breach is a <failure>, an inconclusive SLO is <skipped>."""
    cases = []
    for s in evaluation.results:
        numbers = f"threshold {s.comparator} {s.threshold_text}, observed {s.observed_text}"
        failure = skipped = None
        if s.status == "fail":
            text = f"{s.name}: {numbers}" + (f" ({s.detail})" if s.detail else "")
            failure = junit.Failure(numbers, "SLOBreach", text)
        elif s.status == "inconclusive":
            skipped = f"inconclusive: {s.detail}; {numbers}"
        cases.append(junit.Case(f"scalectl.loadtest.{s.scope}", s.name, "0", failure, skipped))
    suite = junit.Suite(
        "scalectl loadtest",
        cases,
        timestamp=_iso(results.started_at),
        time=f"{results.run_duration:.3f}",
    )
    return junit.to_xml("scalectl loadtest", [suite])


# --- timeseries.csv ---------------------------------------------------------------------


def timeseries_csv(results: Results) -> str:
    """Long format: per second, an 'Aggregated' row then one row per endpoint with requests."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for w in results.windows:
        rows = [(AGGREGATED, w.requests, w.failures, w.latency)]
        rows += [(key, *w.endpoints[key]) for key in sorted(w.endpoints)]
        for name, requests, failures, latency in rows:
            writer.writerow(
                [
                    w.t,
                    name,
                    w.users,
                    requests,
                    failures,
                    requests,  # one-second windows: requests are requests/s
                    *("" if v is None else v for v in _percentiles(latency).values()),
                    int(w.warmup),
                ]
            )
    return buffer.getvalue()
