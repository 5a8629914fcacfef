"""summary.md of one load-test run: the verdict, totals, and tables of the SLOs, the checks
and the endpoints, in GitHub Markdown (for a job summary or a pull request). Its format is
in docs/loadtest.md; scalectl.loadtest.reports writes it beside the other reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scalectl.loadtest.checks import CheckTally
from scalectl.loadtest.evaluation import Evaluation, Verdict
from scalectl.loadtest.results import Results

META_KEYS = ("scenario", "host", "users", "run_time")
AGGREGATED = "Aggregated"


_VERDICT = {"pass": "✅ PASS", "fail": "❌ FAIL", "inconclusive": "⚠️ INCONCLUSIVE"}
_STATUS = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "⚠️ inconclusive"}


def summary_markdown(
    results: Results,
    evaluation: Evaluation,
    meta: Mapping[str, Any],
    *,
    verdict: Verdict | None = None,
    reasons: Sequence[str] = (),
) -> str:
    """summary.md: the verdict and its reasons, the totals, warm-up and open-model notes, and
    tables of the SLOs and endpoints (GitHub Markdown, for a job summary or a pull request)."""
    total = results.total
    parts = [f"{k} {meta[k]}" for k in META_KEYS if meta.get(k) is not None]
    lines = [f"## scalectl loadtest: {_VERDICT[verdict or evaluation.verdict]}", ""]
    lines += [f"- {reason}" for reason in reasons]
    lines += [""] if reasons else []
    lines += [
        f"{total.requests} requests, {total.failures} failed ({total.error_rate * 100:.2f}%),"
        f" {total.rps:.1f}/s over {results.duration:.0f}s"
        + (f"; {', '.join(parts)}" if parts else ""),
        *_warmup_lines(results),
        *_open_lines(results),
        "",
        "| SLO | Threshold | Observed | Result |",
        "| --- | ---: | ---: | --- |",
    ]
    for s in evaluation.results:
        result = _STATUS[s.status] + (f" ({s.detail})" if s.detail else "")
        lines.append(
            f"| {_cell(s.name)} | {s.comparator} {s.threshold_text} | {s.observed_text}"
            f" | {_cell(result)} |"
        )
    lines += _check_lines(evaluation.checks)
    lines += [
        "",
        "| Endpoint | Requests | Failures | Error rate | p50 ms | p95 ms | p99 ms | max ms | RPS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in [*results.endpoints, total]:
        lat = e.latency
        lines.append(
            f"| {_cell(e.key)} | {e.requests} | {e.failures} | {e.error_rate * 100:.2f}%"
            f" | {_ms(lat.p50_ms)} | {_ms(lat.p95_ms)} | {_ms(lat.p99_ms)} | {_ms(lat.max_ms)}"
            f" | {e.rps:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _check_lines(checks: Sequence[CheckTally]) -> list[str]:
    if not checks:
        return []
    lines = ["", "| Check | Endpoint | Passed | Failed | Rate |"]
    lines.append("| --- | --- | ---: | ---: | ---: |")
    for c in checks:
        rate = "n/a" if c.rate is None else f"{c.rate * 100:.2f}%"
        where = c.endpoint or "(never evaluated)"
        lines.append(
            f"| {_cell(c.scope)} '{_cell(c.check)}' | {_cell(where)} | {c.passed} | {c.failed}"
            f" | {rate} |"
        )
    return lines


def _warmup_lines(results: Results) -> list[str]:
    if results.measured_from is None:
        return []
    return [
        "",
        f"Warm-up: the first {results.measured_start - results.started_at:.1f}s (warm-up"
        f" {results.warmup:g}s, to the next whole second) sent load but are left out of every"
        " figure and SLO below; they stay in timeseries.csv and report.html, marked warm-up.",
    ]


def _open_lines(results: Results) -> list[str]:
    stats = results.open
    if stats is None:
        return []
    raw = stats.raw.get(AGGREGATED)
    return [
        "",
        f"Open model: {stats.total_arrivals} tasks started, {stats.late} late (max lag"
        f" {stats.max_lag_ms:.0f} ms), {stats.dropped} dropped. Latency below counts from each"
        " task's intended start (coordinated omission corrected); uncorrected p50/p95/p99:"
        f" {_ms(raw.p50_ms if raw else None)} / {_ms(raw.p95_ms if raw else None)} /"
        f" {_ms(raw.p99_ms if raw else None)} ms.",
    ]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"
