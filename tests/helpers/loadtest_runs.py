"""Load test runs made by hand: raw.json as the Locust children write it, with exactly the
requests given, and the generator and run metadata the reports take."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from hdrh.histogram import HdrHistogram

STARTED = 1_700_000_000.0
Second = dict[str, tuple[Sequence[float], int]]  # "METHOD name" -> (latencies in ms, failures)


@functools.cache
def _encoded(values_ms: tuple[float, ...]) -> str:
    """An HDR histogram as the Locust plugin records it: µs, 1 µs..1 h, 3 digits."""
    hist = HdrHistogram(1, 3_600_000_000, 3)
    for value in values_ms:
        hist.record_value(round(value * 1000))
    return str(hist.encode().decode("ascii"))


def make_raw(
    seconds: Sequence[Second], *, users: int = 10, errors: dict[str, int] | None = None
) -> dict[str, Any]:
    """raw.json for a run of len(seconds) seconds with exactly these requests."""
    totals: dict[str, tuple[list[float], int]] = {}
    windows: dict[str, dict[str, list[Any]]] = {}
    for i, second in enumerate(seconds):
        stamp = str(int(STARTED) + i)
        windows[stamp] = {}
        for key, (values, failures) in second.items():
            windows[stamp][key] = [len(values), failures, _encoded(tuple(values))]
            seen, failed = totals.setdefault(key, ([], 0))
            totals[key] = ([*seen, *values], failed + failures)
    endpoints = {}
    for key, (values, failures) in totals.items():
        method, name = key.split(" ", 1)
        endpoints[key] = {
            "method": method,
            "name": name,
            "requests": len(values),
            "failures": failures,
            "errors": (errors or {}) if failures else {},
            "hist": _encoded(tuple(values)),
        }
    return {
        "version": 1,
        "started_at": STARTED,
        "ended_at": STARTED + len(seconds),
        "endpoints": endpoints,
        "windows": windows,
        "users": {str(int(STARTED) + i): users for i in range(len(seconds))},
    }


# What write_reports takes besides the results: the run as asked for, the load generator.
META = {"scenario": "browse", "host": "http://127.0.0.1:8080", "users": 10, "run_time": "4s"}
GENERATOR = {"processes": 2, "cpu_percent_max": {"1": 40.0}, "saturated": False}
