"""`scalectl loadtest history`: many runs' report.json in time order, as a table of one
endpoint's (or the total's) p50/p95/p99, throughput and error rate, with each run's change
from the one before and the latest run against the median of the others.

pandas holds the table (imported here only, inside the command). Reports are read with
loadtest.compare's reader: size-bounded, every field checked, one line when one is bad.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from scalectl.errors import InputError
from scalectl.loadtest.compare import TOTAL, Report, load_report, report_paths

MAX_REPORTS = 500
METRICS = ("p50_ms", "p95_ms", "p99_ms", "error_rate", "rps")
CHANGED = ("p95_ms", "error_rate", "rps")  # the figures a trend is read from


@dataclass(frozen=True)
class History:
    """The runs in time order: one row each (path, started_at, verdict, requests and the
    metrics, None where a run lacks the endpoint, and `<metric>_change` from the run
    before), and per metric the median, min, max and the latest run's change from the
    median of the others."""

    endpoint: str
    rows: list[dict[str, Any]]
    summary: dict[str, dict[str, float | None]]

    def to_json(self) -> dict[str, Any]:
        """The history as `scalectl loadtest history --json` reports it."""
        return {"endpoint": self.endpoint, "runs": self.rows, "summary": self.summary}


def history_paths(specs: Sequence[str]) -> list[Path]:
    """The report.json files that `specs` name: files, report dirs, globs, or directories
    whose subdirectories are report dirs. Raises InputError for a spec naming no report
    and for more than MAX_REPORTS."""
    paths: list[Path] = []
    for spec in specs:
        folder = Path(spec)
        if folder.is_dir() and not (folder / "report.json").exists():
            found = sorted(folder.glob("*/report.json"))
            if not found:
                raise InputError(f"{folder}: no report.json in it or in its subdirectories")
            paths += found
        else:
            paths += report_paths(spec)
        if len(paths) > MAX_REPORTS:
            raise InputError(f"more than {MAX_REPORTS} reports: give fewer (a narrower glob)")
    return list(dict.fromkeys(paths))


def load_history(paths: Sequence[Path], endpoint: str = TOTAL) -> History:
    """The history of `endpoint` over the reports at `paths`, ordered by their start time
    (reports without one keep their place at the end). Raises InputError for a bad report,
    or an endpoint that no report has."""
    import pandas as pd

    reports = [load_report(p) for p in paths]
    if endpoint != TOTAL and not any(endpoint in r.endpoints for r in reports):
        raise InputError(f"{endpoint!r}: no report has this endpoint (give METHOD name)")
    frame = pd.DataFrame([_record(r, endpoint) for r in reports], columns=_columns())
    frame = frame.sort_values("started", kind="stable", na_position="last")
    frame = frame.reset_index(drop=True)
    for metric in CHANGED:
        # Relative change from the run before; none across a missing value or from zero.
        before = frame[metric].shift(1)
        frame[f"{metric}_change"] = (frame[metric] - before) / before.where(before != 0)
    summary: dict[str, dict[str, float | None]] = {}
    for metric in METRICS:
        values = frame[metric].dropna()
        others = frame[metric].iloc[:-1].dropna()
        last = frame[metric].iloc[-1]
        base = others.median() if len(others) else math.nan
        summary[metric] = {
            "median": _value(values.median()),
            "min": _value(values.min()),
            "max": _value(values.max()),
            "last": _value(last),
            "last_vs_median": _value((last - base) / base if base else math.nan),
        }
    rows = [
        {key: _value(value) for key, value in row.items() if key != "started"}
        for row in frame.to_dict(orient="records")
    ]
    for row in rows:
        row["requests"] = None if row["requests"] is None else int(row["requests"])
    return History(endpoint, rows, summary)


def _columns() -> list[str]:
    return ["run", "started_at", "started", "verdict", "requests", *METRICS]


def _record(report: Report, endpoint: str) -> dict[str, Any]:
    stats = report.total if endpoint == TOTAL else report.endpoints.get(endpoint)
    started = None
    if report.started_at is not None:
        try:
            started = datetime.fromisoformat(report.started_at).timestamp()
        except ValueError:
            raise InputError(
                f"{report.path}: not a scalectl report.json: meta.started_at is not ISO 8601"
            ) from None
    return {
        "run": str(report.path.parent if report.path.name == "report.json" else report.path),
        "started_at": report.started_at,
        "started": started,
        "verdict": report.verdict,
        "requests": None if stats is None else stats.requests,
        **{m: None if stats is None else stats.values[m] for m in METRICS},
    }


def _value(value: Any) -> Any:
    """A plain Python value for JSON and templates: None for a missing one, float for a
    number, text as it is."""
    if value is None or isinstance(value, str):
        return value
    number = float(value)
    return None if math.isnan(number) else number
