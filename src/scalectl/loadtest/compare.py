"""Compare the report.json of two load-test sides, BASE and NEW, per endpoint (issue 4).

Each side is one run or several repeat runs. A metric regressed when NEW's median is worse
than the worst BASE run by more than the tolerance (relative) and the floor (absolute):
with repeats, BASE's spread is its run-to-run noise; with one run per side this is a plain
relative-plus-absolute tolerance. Percentiles with too few samples in any run are
"insufficient", never a regression. When every report has its histograms.json, each row
also gets a 95% interval of NEW − BASE (loadtest.bootstrap), and a row regresses (or
improves) only when the interval says so too. Formats and rules: docs/loadtest.md
"Comparing runs".
"""

from __future__ import annotations

import glob
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from scalectl.errors import ExitCode, InputError, ScalectlError
from scalectl.files import read_json
from scalectl.loadtest import bootstrap
from scalectl.loadtest.bootstrap import Interval
from scalectl.loadtest.results import MIN_SAMPLES
from scalectl.loadtest.windowfile import beside, load_windows

Status = Literal["ok", "improved", "regressed", "insufficient"]
TOTAL = "Aggregated"
# metric -> (fewest requests per run for it to mean anything, True when higher is worse)
METRICS: dict[str, tuple[int, bool]] = {
    "p50_ms": (MIN_SAMPLES[50.0], True),
    "p95_ms": (MIN_SAMPLES[95.0], True),
    "p99_ms": (MIN_SAMPLES[99.0], True),
    "error_rate": (20, True),  # as the error_rate SLO (docs/loadtest.md "Verdict")
    "rps": (1, False),
}
# An error rate must also rise by this much (0.1 point): 0 -> 1 failure in 10k is noise.
MIN_DELTA_ERROR_RATE = 0.001
MAX_REPORT_BYTES = 16 * 1024 * 1024  # a report.json larger than this is not one we wrote


class Regressed(ScalectlError):
    """NEW is worse than BASE beyond the tolerance (exit 5)."""

    exit_code = ExitCode.REGRESSED


@dataclass(frozen=True)
class Stats:
    """One endpoint (or the total) of one run."""

    requests: int
    values: Mapping[str, float | None]


@dataclass(frozen=True)
class Report:
    """The figures compare reads from one report.json: per endpoint and the total."""

    path: Path
    endpoints: Mapping[str, Stats]  # by "METHOD name"
    total: Stats
    histograms: Path | None = None  # its histograms.json, when it has one
    started_at: str | None = None  # meta.started_at, ISO 8601 (loadtest history orders by it)
    verdict: str | None = None


@dataclass(frozen=True)
class Row:
    """One metric of one endpoint compared: BASE's median and range, NEW's median, the relative
    change and the status."""

    endpoint: str
    metric: str
    base: float | None  # median over the side's runs
    base_min: float | None
    base_max: float | None
    new: float | None
    change: float | None  # (new - base) / base; None when base is 0 or missing
    status: Status
    detail: str = ""
    interval: Interval | None = None  # NEW − BASE with its 95% interval, when computed

    def to_json(self) -> dict[str, Any]:
        """The row as `scalectl loadtest compare --json` reports it."""
        out = dict(self.__dict__)
        out["interval"] = None if self.interval is None else self.interval.to_json()
        return out


@dataclass(frozen=True)
class Comparison:
    """Two sides compared: the rows, endpoints only one side has, and the rules used."""

    base: tuple[Path, ...]
    new: tuple[Path, ...]
    tolerance: float
    min_delta_ms: float
    rows: tuple[Row, ...]
    added: tuple[str, ...]  # endpoints only in NEW
    removed: tuple[str, ...]  # endpoints only in BASE
    interval_note: str = ""  # why the rows have no interval, when they have none

    @property
    def regressed(self) -> list[Row]:
        """The rows that regressed (any makes the comparison exit 5)."""
        return [r for r in self.rows if r.status == "regressed"]

    def to_json(self) -> dict[str, Any]:
        """The comparison as `scalectl loadtest compare --json` reports it."""
        return {
            "ok": not self.regressed,
            "base": [str(p) for p in self.base],
            "new": [str(p) for p in self.new],
            "tolerance": self.tolerance,
            "min_delta_ms": self.min_delta_ms,
            "regressed": len(self.regressed),
            "rows": [r.to_json() for r in self.rows],
            "added": list(self.added),
            "removed": list(self.removed),
            "interval_note": self.interval_note,
        }


# --- input ------------------------------------------------------------------------------


def parse_tolerance(text: str) -> float:
    """--tolerance as a fraction, from `10%` or `0.1`. Raises InputError for anything else
    (or a tolerance of 1000% or more)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10 or (not raw.endswith("%") and value >= 1):
        raise InputError(f"--tolerance {text}: expected a percentage such as 10% (or 0.1)")
    return value


def report_paths(spec: str) -> list[Path]:
    """The report.json files of a side: comma-separated files, report dirs, or globs of
    either. Raises InputError for an entry that names no report."""
    paths: list[Path] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            raise InputError(f"{spec!r}: empty entry in a comma-separated list of reports")
        if glob.has_magic(part):
            matches = sorted(glob.glob(part))
            if not matches:
                raise InputError(f"{part}: matches no report")
            candidates = [Path(m) for m in matches]
        else:
            candidates = [Path(part)]
        for path in candidates:
            if path.is_dir():
                path = path / "report.json"
                if not path.is_file():
                    raise InputError(f"{path.parent}: no report.json in this directory")
            elif not path.exists():
                raise InputError(f"{path}: no such file or directory")
            paths.append(path)
    return paths


def load_report(path: Path) -> Report:
    """The endpoint figures of the report.json at `path`. Raises InputError when it cannot be
    read, is not JSON, or is not a version 1 scalectl report."""
    data = read_json(path, MAX_REPORT_BYTES)
    bad = f"{path}: not a scalectl report.json"
    if not isinstance(data, dict):
        raise InputError(f"{bad}: expected an object")
    if data.get("version") != 1:
        raise InputError(f"{bad}: version {data.get('version')!r}, expected 1")
    endpoints = data.get("endpoints")
    if not isinstance(endpoints, list):
        raise InputError(f"{bad}: endpoints must be a list")
    found: dict[str, Stats] = {}
    for i, item in enumerate(endpoints):
        where = f"endpoints[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{bad}: {where} must be an object")
        method, name = item.get("method"), item.get("name")
        if not isinstance(method, str) or not isinstance(name, str):
            raise InputError(f"{bad}: {where} needs string method and name")
        found[f"{method} {name}"] = _stats(item, bad, where)
    total = data.get("total")
    if not isinstance(total, dict):
        raise InputError(f"{bad}: total must be an object")
    meta = data.get("meta")
    started = meta.get("started_at") if isinstance(meta, dict) else None
    verdict = data.get("verdict")
    if started is not None and not isinstance(started, str):
        raise InputError(f"{bad}: meta.started_at must be a string")
    if verdict is not None and verdict not in ("pass", "fail", "inconclusive"):
        raise InputError(f"{bad}: verdict must be pass, fail or inconclusive")
    stats = _stats(total, bad, "total")
    return Report(path, found, stats, beside(path), started, verdict)


def _stats(item: Mapping[str, Any], bad: str, where: str) -> Stats:
    requests = item.get("requests")
    if not isinstance(requests, int) or isinstance(requests, bool) or requests < 0:
        raise InputError(f"{bad}: {where}.requests must be a whole number >= 0")
    values: dict[str, float | None] = {}
    for metric in METRICS:
        value = item.get(metric)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise InputError(f"{bad}: {where}.{metric} must be a number or null")
        values[metric] = None if value is None else float(value)
    return Stats(requests, values)


# --- comparison -------------------------------------------------------------------------


def compare(
    base: Sequence[Report], new: Sequence[Report], *, tolerance: float, min_delta_ms: float
) -> Comparison:
    """Rows per common endpoint (sorted) then the total; endpoints on one side are listed.
    Raises InputError when the sides have no endpoint in common."""
    base_keys = set.intersection(*(set(r.endpoints) for r in base))
    new_keys = set.intersection(*(set(r.endpoints) for r in new))
    common = sorted(base_keys & new_keys)
    if not common:
        raise InputError(
            "BASE and NEW have no endpoint in common (in every run): nothing to compare"
        )
    rows: list[Row] = []
    targets = [(k, [r.endpoints[k] for r in base], [r.endpoints[k] for r in new]) for k in common]
    targets.append((TOTAL, [r.total for r in base], [r.total for r in new]))
    for key, b, n in targets:
        for metric in METRICS:
            rows.append(_compare_metric(key, metric, b, n, tolerance, min_delta_ms))
    note = _with_intervals(rows, base, new, tolerance, min_delta_ms)
    all_base = set().union(*(r.endpoints for r in base))
    all_new = set().union(*(r.endpoints for r in new))
    return Comparison(
        base=tuple(r.path for r in base),
        new=tuple(r.path for r in new),
        tolerance=tolerance,
        min_delta_ms=min_delta_ms,
        rows=tuple(rows),
        added=tuple(sorted(all_new - base_keys)),
        removed=tuple(sorted(all_base - new_keys)),
        interval_note=note,
    )


def _with_intervals(
    rows: list[Row],
    base: Sequence[Report],
    new: Sequence[Report],
    tolerance: float,
    min_delta_ms: float,
) -> str:
    """Give each decided row its interval, in place; a row keeps "regressed" or "improved"
    only when the interval agrees. Returns why there are none, or "" when there are."""
    missing = [r.path for r in [*base, *new] if r.histograms is None]
    if missing:
        return (
            f"no interval: no histograms.json beside {missing[0]} (an older scalectl wrote it);"
            " the tolerance alone decides"
        )
    caches = [
        [bootstrap.RunCache(load_windows(r.histograms)) for r in side if r.histograms]
        for side in (base, new)
    ]
    short = [
        c.run.path for c in [*caches[0], *caches[1]] if len(c.run.seconds) < bootstrap.MIN_SECONDS
    ]
    if short:
        return f"no interval: {short[0]} has under {bootstrap.MIN_SECONDS} measured seconds"
    for key in dict.fromkeys(r.endpoint for r in rows):
        mine = {
            i: r for i, r in enumerate(rows) if r.endpoint == key and r.status != "insufficient"
        }
        margins = {
            r.metric: (
                max(abs(r.base or 0.0) * tolerance, _floor(r.metric, min_delta_ms)),
                METRICS[r.metric][1],
            )
            for r in mine.values()
        }
        if not margins:
            continue
        found = bootstrap.intervals(caches[0], caches[1], key, margins)
        for i, row in mine.items():
            interval = found.get(row.metric)
            if interval is None:
                continue
            status, detail = row.status, row.detail
            if status in ("regressed", "improved") and interval.verdict != status:
                status = "ok"
                detail = f"beyond the tolerance, but not with {interval.confidence:.0%} confidence"
            rows[i] = replace(row, status=status, detail=detail, interval=interval)
    return ""


def _floor(metric: str, min_delta_ms: float) -> float:
    """The least absolute change that counts: --min-delta-ms for latencies, 0.1 point for the
    error rate, none for throughput."""
    if metric.endswith("_ms"):
        return min_delta_ms
    return MIN_DELTA_ERROR_RATE if metric == "error_rate" else 0.0


def _compare_metric(
    key: str,
    metric: str,
    base: Sequence[Stats],
    new: Sequence[Stats],
    tolerance: float,
    min_delta_ms: float,
) -> Row:
    need, higher_is_worse = METRICS[metric]
    b = [s.values[metric] for s in base]
    n = [s.values[metric] for s in new]
    b_known = [v for v in b if v is not None]
    n_known = [v for v in n if v is not None]
    b_med = statistics.median(b_known) if b_known else None
    n_med = statistics.median(n_known) if n_known else None
    change = (n_med - b_med) / b_med if b_med and n_med is not None else None

    def row(status: Status, detail: str = "") -> Row:
        return Row(
            key,
            metric,
            b_med,
            min(b_known) if b_known else None,
            max(b_known) if b_known else None,
            n_med,
            change,
            status,
            detail,
        )

    fewest = min(s.requests for s in [*base, *new])
    if fewest < need:
        return row("insufficient", f"{fewest} samples, need {need}")
    if b_med is None or n_med is None or len(b_known) < len(b) or len(n_known) < len(n):
        return row("insufficient", "no value in some run")
    floor = _floor(metric, min_delta_ms)
    # BASE's range is its noise: worse only beyond its worst run, better beyond its best.
    worst, best = (max(b_known), min(b_known)) if higher_is_worse else (min(b_known), max(b_known))
    sign = 1 if higher_is_worse else -1
    if sign * (n_med - worst) > max(abs(worst) * tolerance, floor):
        return row("regressed")
    if sign * (best - n_med) > max(abs(best) * tolerance, floor):
        return row("improved")
    return row("ok")
