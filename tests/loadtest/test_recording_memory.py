"""The Locust master's memory does not grow with the run's length beyond a few hundred bytes
per endpoint and second: an hour's soak used to keep a full ~190 KB HDR histogram for every
endpoint and every second (6.7 GB for 10 endpoints). The master's real Recorder merges
workers' reports second by second, as plugin.py does, and closes the old windows."""

from __future__ import annotations

import gc
import random
import tracemalloc
from typing import Any

from scalectl.loadtest.child.recording import CLOSE_AFTER_SECONDS, Recorder

ENDPOINTS = 10
START = 1_700_000_000


def _report(second: int, rng: random.Random) -> dict[str, Any]:
    """One worker's report of one second: 170 requests per endpoint (1,700/s in all)."""
    worker = Recorder()
    for e in range(ENDPOINTS):
        key = f"GET /e{e}"
        window = worker._window(second, key)
        for _ in range(170):
            window[2].record_value(int(rng.lognormvariate(9, 0.6)))
        window[0] += 170
        worker.totals[key] = ["GET", f"/e{e}", 170, 0, {}, window[2], True]
    return worker.export()


def test_growth_per_endpoint_second_is_under_a_kilobyte() -> None:
    rng = random.Random(7)
    master = Recorder()
    reports = [_report(START + i, rng) for i in range(3)]  # the same shapes, reused

    def run(seconds: range) -> None:
        for s in seconds:
            report = reports[s % 3]
            master.merge({"endpoints": report["endpoints"], "windows": {
                str(s): next(iter(report["windows"].values()))
            }})  # fmt: skip
            master.close(s - CLOSE_AFTER_SECONDS)

    # Without the cyclic collector: in Locust's processes a full collection is rare, so
    # garbage in reference cycles (hdrh's histograms are) is as good as kept.
    gc.collect()
    gc.disable()
    try:
        tracemalloc.start()  # before anything is recorded: every block is traced
        run(range(START, START + 60))  # past the first closes: the steady state
        before = tracemalloc.get_traced_memory()[0]
        run(range(START + 60, START + 660))
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    finally:
        gc.enable()
    per_endpoint_second = grown / (600 * ENDPOINTS)
    assert per_endpoint_second < 1024, f"{per_endpoint_second:.0f} bytes per endpoint-second"
    # Every second is still there, in full: nothing was dropped to save memory.
    exported = master.export()
    assert len(exported["windows"]) == 660
    assert exported["endpoints"]["GET /e3"]["requests"] == 660 * 170
