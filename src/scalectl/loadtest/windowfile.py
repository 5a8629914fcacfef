"""histograms.json: the measured seconds of one run as per-second HDR histograms per endpoint,
written beside report.json so that `loadtest compare` can resample them (loadtest.bootstrap).

report.json keeps percentiles, which cannot be merged or resampled; these histograms can.
The file is written by `scalectl loadtest` and read back from report directories that may
come from anywhere (CI artefacts), so reading checks every field and bounds the size.

    {"version": 1, "measured_from": unix time, "ended_at": unix time,
     "aggregate": ["<METHOD> <name>", ...],          # the endpoints "Aggregated" counts
     "windows": {"<unix second>": {"<METHOD> <name>": [requests, failures, base64 HDR]}}}

Seconds without requests are absent. Warm-up seconds are left out, as from every figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalectl.errors import InputError
from scalectl.files import read_json
from scalectl.loadtest.results import Results

HISTOGRAMS_FILE = "histograms.json"
VERSION = 1
# ~300 bytes per endpoint-second: 64 MiB holds a 10-endpoint run of about 6 hours.
MAX_BYTES = 64 * 1024 * 1024
MAX_SECONDS = 7 * 24 * 3600  # a longer span is not a run this tool made


@dataclass(frozen=True)
class RunWindows:
    """One run's measured seconds: when the measured part starts and ends, which endpoints
    the aggregate counts, and per second and endpoint (requests, failures, histogram text)."""

    path: Path
    start: float
    end: float
    aggregate: frozenset[str]
    windows: Mapping[int, Mapping[str, tuple[int, int, str]]]

    @property
    def seconds(self) -> range:
        """Every wall-clock second the measured part touches, silent ones included."""
        return range(math.floor(self.start), max(math.ceil(self.end), math.floor(self.start) + 1))

    def covered(self, second: int) -> float:
        """How much of `second` the measured part covers (the first and last are partial)."""
        return max(min(second + 1, self.end) - max(second, self.start), 0.0)


def histograms_data(results: Results) -> dict[str, Any]:
    """histograms.json's content for a run's results."""
    return {
        "version": VERSION,
        "measured_from": results.measured_start,
        "ended_at": results.ended_at,
        "aggregate": sorted(results.aggregated),
        "windows": {
            str(second): {key: list(entry) for key, entry in sorted(per_key.items())}
            for second, per_key in sorted(results.histograms.items())
        },
    }


def beside(report: Path) -> Path | None:
    """The histograms.json in the same directory as a report.json, None when there is none."""
    path = report.parent / HISTOGRAMS_FILE
    return path if path.exists() else None


def load_windows(path: Path) -> RunWindows:
    """The histograms.json at `path`, every field checked (histogram texts are checked when
    decoded). Raises InputError, in one line, for a file too large, not JSON, or not this
    format."""
    data = read_json(path, MAX_BYTES)
    bad = f"{path}: not a scalectl histograms.json"
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise InputError(f"{bad}: expected an object with version {VERSION}")
    start_value: Any = data.get("measured_from")
    end_value: Any = data.get("ended_at")
    if not (_number(start_value) and _number(end_value)):
        raise InputError(f"{bad}: measured_from and ended_at must be numbers")
    start, end = float(start_value), float(end_value)
    if not 0 < start <= end <= start + MAX_SECONDS:
        raise InputError(f"{bad}: measured_from and ended_at must be times, in order")
    aggregate = data.get("aggregate")
    if not isinstance(aggregate, list) or not all(isinstance(k, str) for k in aggregate):
        raise InputError(f"{bad}: aggregate must be a list of endpoint names")
    raw = data.get("windows")
    if not isinstance(raw, dict):
        raise InputError(f"{bad}: windows must be an object")
    first, last = math.floor(start), math.ceil(end)
    windows: dict[int, dict[str, tuple[int, int, str]]] = {}
    for second_text, per_key in raw.items():
        if not second_text.isdigit() or not first <= int(second_text) <= last:
            raise InputError(f"{bad}: windows[{second_text[:20]!r}] is not a measured second")
        if not isinstance(per_key, dict):
            raise InputError(f"{bad}: windows[{second_text}] must be an object")
        entries: dict[str, tuple[int, int, str]] = {}
        for key, entry in per_key.items():
            if not (
                isinstance(entry, list)
                and len(entry) == 3
                and _count(entry[0])
                and _count(entry[1])
                and entry[1] <= entry[0]
                and isinstance(entry[2], str)
            ):
                raise InputError(
                    f"{bad}: windows[{second_text}] entries must be [requests, failures, histogram]"
                )
            entries[key] = (entry[0], entry[1], entry[2])
        windows[int(second_text)] = entries
    return RunWindows(path, start, end, frozenset(aggregate), windows)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**48
