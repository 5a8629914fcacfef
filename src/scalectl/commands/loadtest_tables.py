"""The tables `scalectl loadtest` prints: a run's endpoints and SLOs, a comparison of
reports, and a history of runs. Rendering only; the figures come from loadtest.results,
loadtest.compare and loadtest.history."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from scalectl.output import Output


def print_run(
    output: Output,
    results: Any,
    evaluation: Any,
    verdict: str,
    reasons: list[str],
    written: list[Path],
) -> None:
    """Print a run's endpoints and SLOs as tables, then the reasons and the verdict."""
    from rich.table import Table
    from rich.text import Text

    endpoints = Table(title="Endpoints", title_justify="left")
    for col in ("endpoint", "requests", "failures", "rps", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        endpoints.add_column(col, justify="left" if col == "endpoint" else "right")
    for e in [*results.endpoints, results.total]:
        lat = e.latency
        endpoints.add_row(
            e.key,
            str(e.requests),
            f"{e.failures} ({e.error_rate:.1%})",
            f"{e.rps:.1f}",
            *(
                f"{v:.1f}" if v is not None else "-"
                for v in (lat.p50_ms, lat.p95_ms, lat.p99_ms, lat.max_ms)
            ),
        )
    output.console.print(endpoints)
    if results.measured_from is not None:
        output.info(
            f"warm-up: the first {results.measured_start - results.started_at:.1f}s (warm-up "
            f"{results.warmup:g}s to the next whole second) are left out of these figures and "
            "the SLOs; they stay in timeseries.csv and report.html, marked as warm-up"
        )
    stats = results.open
    if stats is not None:
        raw = stats.raw["Aggregated"]
        output.info(
            f"open model: {stats.total_arrivals} tasks, {stats.late} late (worst "
            f"{stats.max_lag_ms:.0f} ms), {stats.dropped} dropped; latency above counts from "
            f"each task's intended start; uncorrected p50/p95/p99 {raw.p50_ms}/{raw.p95_ms}/"
            f"{raw.p99_ms} ms"
        )
    if evaluation.results:
        slos = Table(title="SLOs", title_justify="left")
        for col in ("SLO", "threshold", "observed", "result"):
            slos.add_column(col)
        for r in evaluation.results:
            style = {"pass": "green", "fail": "red"}.get(r.status, "yellow")
            slos.add_row(
                Text(r.name),  # user text: never rich markup
                f"{r.comparator} {r.threshold_text}",
                r.observed_text,
                f"[{style}]{r.status}[/{style}]",
            )
        output.console.print(slos)
    if evaluation.checks:
        _print_checks(output, evaluation.checks)
    for reason in reasons:
        output.warn(reason)
    output.info(f"verdict: {verdict}; reports in {', '.join(str(p) for p in written)}")


def _print_checks(output: Output, checks: list[Any]) -> None:
    """The SLO file's checks (loadtest.checks.CheckTally), per check and endpoint."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Checks", title_justify="left")
    for col in ("check", "endpoint", "passed", "failed", "rate"):
        table.add_column(col, justify="right" if col in ("passed", "failed", "rate") else "left")
    for c in checks:
        rate = "-" if c.rate is None else f"{c.rate:.2%}"
        table.add_row(
            Text(f"{c.scope} '{c.check}'"),
            Text(c.endpoint or "(never evaluated)"),
            str(c.passed),
            Text(str(c.failed), style="red" if c.failed else ""),
            rate,
        )
    output.console.print(table)


def print_comparison(output: Output, result: Any) -> None:
    """Print a comparison of reports (loadtest.compare) as a table with its verdict."""
    from rich.table import Table
    from rich.text import Text

    def value(v: float | None, metric: str) -> str:
        if v is None:
            return "-"
        return f"{v:.2%}" if metric == "error_rate" else f"{v:.1f}"

    def delta(v: float, metric: str) -> str:
        return f"{v * 100:+.2f}pt" if metric == "error_rate" else f"{v:+.1f}"

    runs = f"{len(result.base)} vs {len(result.new)} run(s)"
    table = Table(title=f"Compare: {runs}", title_justify="left")
    # Reports without histograms (written before them) give no interval column.
    with_interval = not result.interval_note
    columns = ("endpoint", "metric", "base", "new", "change", "new−base [95%]", "status")
    for col in columns if with_interval else columns[:5] + columns[6:]:
        table.add_column(
            col, justify="left" if col in ("endpoint", "metric", "status") else "right"
        )
    styles = {"ok": "green", "improved": "green", "regressed": "red", "insufficient": "yellow"}
    for r in result.rows:
        base = value(r.base, r.metric)
        if r.base_min != r.base_max:
            base += f" ({value(r.base_min, r.metric)}–{value(r.base_max, r.metric)})"
        status = r.status
        interval = "-"
        if r.interval is not None:
            i = r.interval
            interval = (
                f"{delta(i.diff, r.metric)} [{delta(i.low, r.metric)}, {delta(i.high, r.metric)}]"
            )
            verdict = f"{i.verdict} at {i.confidence:.0%}"
            status = verdict if i.verdict == r.status else f"{status}: {verdict}"
        status += f" ({r.detail})" if r.detail else ""
        table.add_row(
            Text(r.endpoint),
            r.metric,
            base,
            value(r.new, r.metric),
            "-" if r.change is None else f"{r.change:+.1%}",
            *([interval] if with_interval else []),
            Text(status, style=styles[r.status]),
        )
    output.console.print(table)
    for key in result.added:
        output.info(f"added (only in NEW): {key}")
    for key in result.removed:
        output.info(f"removed (only in BASE): {key}")
    if result.interval_note:
        output.info(result.interval_note)
    else:
        output.info(
            "intervals: 95%, a block bootstrap of the per-second histograms (1000 resamples, "
            "fixed seed); a verdict counts a change only beyond the tolerance and min delta"
        )
    verdict = f"{len(result.regressed)} regressed" if result.regressed else "no regression"
    output.info(
        f"{verdict} (tolerance {result.tolerance:.0%}, min delta {result.min_delta_ms:g} ms)"
    )


def print_history(output: Output, history: Any) -> None:
    """Print many runs in time order (loadtest.history) and the latest against the rest."""
    from rich.table import Table
    from rich.text import Text

    def num(v: float | None, digits: int = 1) -> str:
        return "-" if v is None else f"{v:.{digits}f}"

    def change(v: float | None) -> str:
        return "" if v is None else f" ({v:+.0%})"

    # Runs by their path under the folder they share: long CI paths would wrap.
    runs = [r["run"] for r in history.rows]
    common = os.path.commonpath(runs) if len(set(runs)) > 1 else ""
    title = f"History: {history.endpoint}, oldest first" + (f", under {common}" if common else "")
    table = Table(title=title, title_justify="left")
    for col in (
        "#",
        "run",
        "started",
        "verdict",
        "requests",
        "p50",
        "p95 ms",
        "p99",
        "errors",
        "rps",
    ):
        table.add_column(col, justify="left" if col in ("run", "started", "verdict") else "right")
    for i, r in enumerate(history.rows, start=1):
        errors = "-" if r["error_rate"] is None else f"{r['error_rate']:.2%}"
        table.add_row(
            str(i),
            Text(os.path.relpath(r["run"], common) if common else r["run"]),
            (r["started_at"] or "-")[:19],
            r["verdict"] or "-",
            "-" if r["requests"] is None else str(r["requests"]),
            num(r["p50_ms"]),
            num(r["p95_ms"]) + change(r["p95_ms_change"]),
            num(r["p99_ms"]),
            errors,
            num(r["rps"]) + change(r["rps_change"]),
        )
    output.console.print(table)
    parts = []
    for metric in ("p95_ms", "error_rate", "rps"):
        s = history.summary[metric]
        if s["last_vs_median"] is not None:
            parts.append(f"{metric} {s['last_vs_median']:+.1%}")
    if parts:
        output.info("latest run against the median of the runs before it: " + ", ".join(parts))
