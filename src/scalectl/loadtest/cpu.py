"""How busy a Locust process is: the share of a core it used, and the share it wanted.

A generator sharing its cores with the system under test (a CI runner, a 2-core laptop) can
be starved: it wants a whole core but is given half. psutil's CPU percent then reads 50 and
the run looks healthy, while users are late to send and late to read their responses, which
inflates the measured latency. Linux counts the time a task waited for a core
(/proc/PID/schedstat, "run_ns wait_ns slices"); used plus waited is the demand, and a
demand near a full core means the generator was the bottleneck, starved or not.

Imported by the Locust children too (child/plugin.py): psutil and the standard library only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil


def _sched_ns(pid: int) -> int | None:
    """Nanoseconds the process's main thread ran plus waited to run; None where the kernel
    does not say (not Linux, or schedstats off). The main thread is where gevent runs every
    simulated user."""
    try:
        run_ns, wait_ns, *_ = Path(f"/proc/{pid}/schedstat").read_text().split()
        return int(run_ns) + int(wait_ns)
    except (OSError, ValueError):
        return None


class CpuMeter:
    """Readings since the previous one, in % of one core: (used, demanded)."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc = proc
        proc.cpu_percent(None)  # the first call primes psutil's counter
        self._wall = time.monotonic()
        self._sched = _sched_ns(proc.pid)

    def read(self) -> tuple[float, float]:
        """Raises psutil.Error when the process is gone."""
        used = self.proc.cpu_percent(None)
        now, sched = time.monotonic(), _sched_ns(self.proc.pid)
        demanded = used
        if sched is not None and self._sched is not None and now > self._wall:
            waited_or_ran = (sched - self._sched) / 1e9 / (now - self._wall) * 100
            demanded = max(used, min(waited_or_ran, 100.0))
        self._wall, self._sched = now, sched
        return used, demanded


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says, else all
    of them): what `--processes auto` uses and what more processes would share."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
