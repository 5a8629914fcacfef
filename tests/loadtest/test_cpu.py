"""CpuMeter against real processes: a starved busy process demands a whole core while it
uses half of one, which is what makes a starved load generator inconclusive."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest

from scalectl.loadtest.cpu import CpuMeter

SPIN = "import time\nend = time.monotonic() + 20\nwhile time.monotonic() < end: pass\n"
SLEEP = "import time\ntime.sleep(20)\n"


@contextmanager
def on_core(code: str, core: int) -> Iterator[psutil.Process]:
    """A Python child running `code`, pinned to one core; stopped on exit (bounded: 20 s)."""
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        os.sched_setaffinity(proc.pid, {core})
        yield psutil.Process(proc.pid)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def reading(meter: CpuMeter, seconds: float = 2.0) -> tuple[float, float]:
    time.sleep(seconds)
    return meter.read()


@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="Linux schedstat")
def test_a_starved_busy_process_demands_a_core_it_is_not_given() -> None:
    core = min(os.sched_getaffinity(0))
    with on_core(SPIN, core) as busy, on_core(SPIN, core):
        meter = CpuMeter(busy)
        used, demanded = reading(meter)
    assert used < 75  # two spinners share one core: about half each
    assert demanded >= 90


@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="Linux schedstat")
def test_an_idle_process_demands_nothing() -> None:
    core = min(os.sched_getaffinity(0))
    with on_core(SLEEP, core) as idle, on_core(SPIN, core):
        used, demanded = reading(CpuMeter(idle))
    assert used < 5 and demanded < 5
