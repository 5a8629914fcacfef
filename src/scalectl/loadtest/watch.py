"""Watching a running Locust from scalectl's process: CPU of every Locust process each second
(GeneratorStats), live progress from the plugin's live file, abort criteria, a stop asked for
by the caller, and a hard time bound."""

from __future__ import annotations

import contextlib
import json
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from scalectl.loadtest.cpu import CpuMeter, usable_cores
from scalectl.loadtest.rawjson import from_raw
from scalectl.loadtest.results import Results
from scalectl.processes import signal_group

SATURATED_CPU = 90.0  # percent of one core: the median after start-up, any Locust process
BUSY_MACHINE_CPU = 90.0  # percent of all cores together: the median after start-up
STARTUP_SAMPLES = 2  # seconds of start-up (imports, spawning) left out of the verdict
GRACE_SECONDS = 60  # beyond --run-time before the run is stopped by force

Progress = Callable[[dict[str, Any]], None]
AbortCheck = Callable[[Results], str | None]
StopCheck = Callable[[], bool]  # True: the caller is done, stop Locust now (not an abort)


@dataclass
class GeneratorStats:
    """How busy the load generator was: CPU used and demanded per Locust process and the
    machine's CPU, one sample a second; `limits` is what the verdict rests on."""

    processes: int
    cores: int = field(default_factory=usable_cores)
    # False for a `--master`: its load came from workers on other machines, so this
    # machine's cores and CPU say nothing about them.
    local: bool = True
    # The whole machine, all cores together, % (psutil.cpu_percent), one sample a second.
    machine: list[float] = field(default_factory=list)
    # Per process, one sample a second, % of a core: CPU used (local processes only), and
    # CPU demanded, used plus waited for a core (loadtest.cpu), which the verdict rests on:
    # a generator starved by a busy machine is as much the bottleneck as a saturated one.
    cpu: dict[str, list[float]] = field(default_factory=dict)
    demand: dict[str, list[float]] = field(default_factory=dict)
    # One sample a second: start-up, then the warm-up, are not what the verdict rests on
    # (a generator busy only while spawning its users did not distort the measured part).
    skip_samples: int = STARTUP_SAMPLES

    def _medians(self, series: dict[str, list[float]]) -> dict[str, float]:
        return {
            label: statistics.median(samples[self.skip_samples :] or samples)
            for label, samples in series.items()
            if samples
        }

    @property
    def cpu_median(self) -> dict[str, float]:
        """Median CPU used per process after start-up and warm-up, % of a core."""
        return self._medians(self.cpu)

    @property
    def demand_median(self) -> dict[str, float]:
        """Median CPU demanded (used plus waited for) per process after start-up and warm-up, %
        of a core."""
        return self._medians(self.demand)

    @property
    def saturated(self) -> bool:
        """Whether some process demanded SATURATED_CPU or more of a core (median): the generator,
        not the target, may have set the pace."""
        return any(v >= SATURATED_CPU for v in self.demand_median.values())

    @property
    def machine_median(self) -> float | None:
        """Median CPU of the whole machine after start-up and warm-up, % of all cores; None
        before a sample."""
        samples = self.machine[self.skip_samples :] or self.machine
        return statistics.median(samples) if samples else None

    @property
    def limits(self) -> list[str]:
        """Why the generator, not the target, may have set the pace, as report.json's codes:
        `process_cpu` (saturated), `machine_cpu` (every core busy while the Locust processes
        together demanded SATURATED_CPU of a core: spread over processes that share cores,
        no single one reaches it), `processes_over_cores` (more Locust processes than
        cores: they take turns, and a user waits for its process's turn)."""
        out = ["process_cpu"] if self.saturated else []
        if not self.local:
            return out
        machine = self.machine_median
        if (
            machine is not None
            and machine >= BUSY_MACHINE_CPU
            and sum(self.demand_median.values()) >= SATURATED_CPU
        ):
            out.append("machine_cpu")
        if self.processes > self.cores:
            out.append("processes_over_cores")
        return out

    def to_json(self) -> dict[str, Any]:
        """report.json's `generator` figures."""
        machine = self.machine_median
        return {
            "processes": self.processes,
            "cores": self.cores,
            "machine_cpu_percent_median": None if machine is None else round(machine, 1),
            "limited_by": self.limits,
            "cpu_percent_median": {k: round(v, 1) for k, v in self.cpu_median.items()},
            "cpu_percent_max": {k: round(max(v), 1) for k, v in self.cpu.items() if v},
            "demand_percent_median": {k: round(v, 1) for k, v in self.demand_median.items()},
            "saturated": self.saturated,
            "saturation_threshold_percent": SATURATED_CPU,
        }


def watch_locust(
    proc: subprocess.Popen[bytes],
    stats: GeneratorStats,
    live_path: Path,
    *,
    bound_seconds: float,
    warmup_seconds: float,
    progress: Progress,
    abort_check: AbortCheck | None,
    should_stop: StopCheck | None = None,
    shape_path: Path | None = None,
    shape_bound_seconds: float = 0.0,
) -> str | None:
    """Watch Locust (`proc`, the leader of its process group) until it exits, once a second:
    the CPU of each of its processes into `stats`, `progress` with the live file's figures,
    `abort_check` on them, `should_stop`. Past `bound_seconds` (the run time, and any wait for
    workers) plus GRACE_SECONDS the group is stopped by force.

    Once `shape_path` exists (the locustfile has a LoadTestShape, child/shapebound.py), the
    bound is `shape_bound_seconds` from the start instead: the shape, not -t, ends the run.

    Returns why the run was stopped early (an abort reason or the time bound), or None when
    Locust ended by itself or `should_stop` asked for it. Locust is sent SIGTERM for each
    (SIGINT while a shape runs: Locust handles SIGTERM only once a shape has ended), and
    still writes its results.
    """
    started = time.monotonic()
    deadline = started + bound_seconds + GRACE_SECONDS
    bound_name = "--run-time"
    stop = signal.SIGTERM
    tracked: dict[int, CpuMeter] = {}
    psutil.cpu_percent(None)  # primes the machine-wide counter
    while proc.poll() is None:
        if stop == signal.SIGTERM and shape_path is not None and shape_path.exists():
            deadline = started + shape_bound_seconds + GRACE_SECONDS
            bound_name, stop = "--max-run-time", signal.SIGINT
        if time.monotonic() > deadline:
            signal_group(proc.pid, stop)
            return f"did not stop within {bound_name} + {GRACE_SECONDS}s"
        try:
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.Error:
            family = []
        for member in family:
            if member.pid not in tracked:
                with contextlib.suppress(psutil.Error):
                    tracked[member.pid] = CpuMeter(member)
        try:
            proc.wait(timeout=1.0)
            break  # Locust ended: no partial second is sampled, and no second is lost
        except subprocess.TimeoutExpired:
            pass
        stats.machine.append(psutil.cpu_percent(None))
        for index, (pid, meter) in enumerate(sorted(tracked.items())):
            label = "master" if pid == proc.pid else f"worker-{index}"
            try:
                used, demanded = meter.read()
            except psutil.Error:
                continue
            stats.cpu.setdefault(label, []).append(used)
            stats.demand.setdefault(label, []).append(demanded)
        if should_stop is not None and should_stop():
            signal_group(proc.pid, stop)  # Locust quits and still writes its results
            return None
        live = _read_live(live_path)
        if live is None:
            continue
        progress(live)
        if abort_check is not None and live.get("windows"):
            reason = abort_check(from_raw(live, warmup_seconds))
            if reason:
                signal_group(proc.pid, stop)
                return reason
    return None


def _read_live(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("started_at") else None
