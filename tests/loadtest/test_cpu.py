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
from scalectl.loadtest.watch import GeneratorStats

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


def test_a_busy_machine_limits_a_generator_spread_over_processes() -> None:
    # Four processes each wanting 40% of a core: none is saturated, but together they want
    # more than a core of a machine whose cores are all busy.
    stats = GeneratorStats(processes=4, cores=4, skip_samples=0)
    stats.demand = {f"worker-{i}": [40.0] * 5 for i in range(4)}
    stats.machine = [97.0] * 5
    assert not stats.saturated
    assert stats.limits == ["machine_cpu"]
    # The same machine busy with something else, the generator idle: not the generator.
    stats.demand = {f"worker-{i}": [5.0] * 5 for i in range(4)}
    assert stats.limits == []
    # A master's workers run elsewhere: this machine's cores say nothing about them.
    stats = GeneratorStats(processes=8, cores=2, skip_samples=0, local=False)
    assert stats.limits == []
    assert GeneratorStats(processes=8, cores=2).limits == ["processes_over_cores"]
