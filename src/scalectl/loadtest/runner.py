"""Run Locust in child processes and watch it: CPU of every Locust process, live progress,
abort criteria, a hard time bound, Ctrl-C. scalectl's own process never imports locust."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

from scalectl import resources
from scalectl.errors import InputError
from scalectl.files import tail
from scalectl.loadtest.cpu import CpuMeter
from scalectl.loadtest.rawjson import from_raw, load_raw
from scalectl.loadtest.results import Results
from scalectl.processes import signal_group
from scalectl.stack.process import child_environment

SATURATED_CPU = 90.0  # percent of one core: the median after start-up, any Locust process
STARTUP_SAMPLES = 2  # seconds of start-up (imports, spawning) left out of the verdict
GRACE_SECONDS = 60  # beyond --run-time before the run is stopped by force


WORKER_WAIT_SECONDS = 120  # how long a `--master` waits for its workers to connect


@dataclass(frozen=True)
class Distributed:
    """Locust's own distributed mode: this run is the master and the workers connect to it
    from elsewhere (other machines, other shells)."""

    expect_workers: int
    bind_host: str = "*"
    bind_port: int = 5557


@dataclass(frozen=True)
class RunConfig:
    """One load-test run as Locust is to be started: scenario, target, load shape, length,
    processes, and the open model or distributed mode when asked."""

    locustfile: Path
    host: str
    users: int
    spawn_rate: float
    run_time_seconds: int
    processes: int
    tags: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    rate: float | None = None  # the open model: arrivals/s over all users; None is closed
    master: Distributed | None = None
    warmup_seconds: float = 0.0  # the first part of run_time_seconds, sent but not gated
    # False: Locust gets the allowlisted environment (stack.process.child_environment) and
    # `env`, not all of ours (drills: a CI's tokens stay behind). `scalectl loadtest` keeps
    # True, since a user's locustfile may read their own variables, as Locust does.
    inherit_environment: bool = True

    @property
    def user_rate(self) -> float:
        """The open model's arrivals per second per user; 0 for the closed model."""
        return self.rate / self.users if self.rate else 0.0


@dataclass
class GeneratorStats:
    """How busy the load generator was: CPU used and demanded per Locust process, one sample a
    second; `saturated` is what the verdict rests on."""

    processes: int
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

    def to_json(self) -> dict[str, Any]:
        """report.json's `generator` figures."""
        return {
            "processes": self.processes,
            "cpu_percent_median": {k: round(v, 1) for k, v in self.cpu_median.items()},
            "cpu_percent_max": {k: round(max(v), 1) for k, v in self.cpu.items() if v},
            "demand_percent_median": {k: round(v, 1) for k, v in self.demand_median.items()},
            "saturated": self.saturated,
            "saturation_threshold_percent": SATURATED_CPU,
        }


@dataclass
class RunOutcome:
    """What a run produced: the results, how busy the generator was, why it was stopped early (if
    it was), whether Ctrl-C interrupted it, and Locust's exit code."""

    results: Results
    generator: GeneratorStats
    aborted: str | None  # why the run was stopped early, if it was
    interrupted: bool
    returncode: int


Progress = Callable[[dict[str, Any]], None]
AbortCheck = Callable[[Results], str | None]
StopCheck = Callable[[], bool]  # True: the caller is done, stop Locust now (not an abort)


def resolve_locustfile(name: str) -> Path:
    """The locustfile `name` means: a path to one, or the name of a shipped scenario.
    Raises InputError when it is neither."""
    path = Path(name)
    if path.suffix == ".py" or path.exists():
        if not path.is_file():
            raise InputError(f"{name}: no such locustfile")
        return path.resolve()
    candidate = resources.data_dir("scenarios").joinpath(f"{name}.py")
    if candidate.is_file() and candidate.name not in _HELPERS:
        return Path(str(candidate))
    listed = ", ".join(scenarios())
    raise InputError(f"no scenario or locustfile named '{name}' (scenarios: {listed})")


# Modules the scenarios import, not scenarios themselves.
_HELPERS = ("common.py", "shapes.py")


def scenarios() -> dict[str, str]:
    """The shipped scenarios by name, each with its docstring's first paragraph (read with
    ast: importing a locustfile would import locust into this process)."""
    import ast

    found: dict[str, str] = {}
    for entry in sorted(resources.data_dir("scenarios").iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".py") or entry.name in _HELPERS:
            continue
        doc = ast.get_docstring(ast.parse(entry.read_text(encoding="utf-8"))) or ""
        found[entry.name.removesuffix(".py")] = " ".join(doc.split("\n\n")[0].split())
    return found


def check_host(host: str, allowed: tuple[str, ...]) -> tuple[str, int]:
    """Check that load may go to `host`: only loopback (scalectl.netguard), or a host the
    user named with --allow-host; and it must answer. Returns (host name, port); raises
    InputError otherwise."""
    from scalectl.netguard import url_host, url_problem

    try:
        name = url_host(host)
    except ValueError as exc:
        raise InputError(f"--host {host}: {exc}") from None
    problem = url_problem(host, allowed)
    if problem:
        raise InputError(
            f"--host {host}: {problem}; load tests send traffic only where you allow it: "
            f"add --allow-host {name}"
        )
    parts = urlsplit(host)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((name, port), timeout=2):
            pass
    except OSError as exc:
        raise InputError(f"--host {host}: cannot connect ({exc.strerror or exc})") from None
    return name, port


def run(
    config: RunConfig,
    *,
    progress: Progress = lambda _: None,
    abort_check: AbortCheck | None = None,
    should_stop: StopCheck | None = None,
) -> RunOutcome:
    """Run Locust as `config` says, in child processes in their own session, and watch it until
    it ends: CPU of every Locust process each second, `progress` with the live figures,
    `abort_check` on them (a reason stops the run), `should_stop` (True stops it without an
    abort), and a hard bound of the run time plus GRACE_SECONDS. Ctrl-C stops Locust, which
    still writes its results.

    Returns the RunOutcome. Raises InputError when Locust exits without results (the tail of its
    log says why) and ScalectlError when its results cannot be read.
    """
    plugin = Path(__file__).resolve().parent / "child" / "plugin.py"
    with tempfile.TemporaryDirectory(prefix="scalectl-loadtest-") as tmp:
        raw_path, live_path = Path(tmp) / "raw.json", Path(tmp) / "live.json"
        argv = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            f"{config.locustfile},{plugin}",
            "--headless",
            "-u",
            str(config.users),
            "-r",
            f"{config.spawn_rate:g}",
            "-t",
            f"{config.run_time_seconds}s",
            "-H",
            config.host,
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--stop-timeout",
            "10",
            "--exit-code-on-error",
            "0",
        ]
        if config.master is not None:
            argv += [
                "--master",
                "--master-bind-host",
                config.master.bind_host,
                "--master-bind-port",
                str(config.master.bind_port),
                "--expect-workers",
                str(config.master.expect_workers),
                "--expect-workers-max-wait",
                str(WORKER_WAIT_SECONDS),
            ]
        elif config.processes > 1:
            # Locust's master binds *:5557 and its forked workers connect to 127.0.0.1:5557:
            # two runs on one machine (CI jobs, a drill beside a test) collide, and the port
            # is open to the network. Each run gets its own free loopback port.
            port = str(_free_loopback_port())
            argv += ["--processes", str(config.processes), "--master-bind-host", "127.0.0.1"]
            argv += ["--master-bind-port", port, "--master-port", port]
        if config.tags:
            argv += ["--tags", *config.tags]
        if config.rate:
            argv += ["--scalectl-user-rate", repr(config.user_rate)]
        env = {
            **(os.environ if config.inherit_environment else child_environment(os.environ)),
            **config.env,
            "SCALECTL_RAW_OUT": str(raw_path),
            "SCALECTL_LIVE_OUT": str(live_path),
            "PYTHONUNBUFFERED": "1",
        }
        log_path = Path(tmp) / "locust.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                cwd=config.locustfile.parent,
            )
        stats = GeneratorStats(
            processes=config.processes,
            skip_samples=STARTUP_SAMPLES + math.ceil(config.warmup_seconds),
        )
        aborted: str | None = None
        interrupted = False
        try:
            aborted = _watch(proc, config, stats, live_path, progress, abort_check, should_stop)
        except KeyboardInterrupt:
            interrupted = True
            _signal_group(proc, signal.SIGINT)  # Locust stops and still writes its results
        returncode = _finish(proc)
        if not raw_path.exists():
            raise InputError(
                f"{config.locustfile}: Locust exited ({returncode}) without results:",
                lines=tail(log_path, 15),
            )
        results = load_raw(raw_path, config.warmup_seconds)
        if config.master is not None:
            # The local process is only the master; the load came from the workers.
            stats.demand.update(results.worker_demand)
            stats.processes = len(results.worker_demand)
        return RunOutcome(results, stats, aborted, interrupted, returncode)


def run_worker(
    locustfile: Path, master_host: str, master_port: int, processes: int, max_seconds: int
) -> int:
    """Locust worker process(es) for a `--master` elsewhere: the master sends the host, the
    users and the run time, and collects the measurements. Returns Locust's exit code."""
    plugin = Path(__file__).resolve().parent / "child" / "plugin.py"
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{locustfile},{plugin}",
        "--worker",
        "--master-host",
        master_host,
        "--master-port",
        str(master_port),
        "--loglevel",
        "WARNING",
    ]
    if processes > 1:
        argv += ["--processes", str(processes)]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
        cwd=locustfile.parent,
    )
    try:
        return proc.wait(timeout=max_seconds)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGTERM)
        return _finish(proc)
    except KeyboardInterrupt:
        _signal_group(proc, signal.SIGINT)
        _finish(proc)
        raise
    finally:
        _signal_group(proc, signal.SIGKILL)


def _watch(
    proc: subprocess.Popen[bytes],
    config: RunConfig,
    stats: GeneratorStats,
    live_path: Path,
    progress: Progress,
    abort_check: AbortCheck | None,
    should_stop: StopCheck | None = None,
) -> str | None:
    deadline = time.monotonic() + config.run_time_seconds + GRACE_SECONDS
    if config.master is not None:
        deadline += WORKER_WAIT_SECONDS
    tracked: dict[int, CpuMeter] = {}
    while proc.poll() is None:
        if time.monotonic() > deadline:
            _signal_group(proc, signal.SIGTERM)
            return f"did not stop within --run-time + {GRACE_SECONDS}s"
        try:
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.Error:
            family = []
        for member in family:
            if member.pid not in tracked:
                with contextlib.suppress(psutil.Error):
                    tracked[member.pid] = CpuMeter(member)
        time.sleep(1.0)
        for index, (pid, meter) in enumerate(sorted(tracked.items())):
            label = "master" if pid == proc.pid else f"worker-{index}"
            try:
                used, demanded = meter.read()
            except psutil.Error:
                continue
            stats.cpu.setdefault(label, []).append(used)
            stats.demand.setdefault(label, []).append(demanded)
        if should_stop is not None and should_stop():
            _signal_group(proc, signal.SIGTERM)  # Locust quits and still writes its results
            return None
        live = _read_live(live_path)
        if live is None:
            continue
        progress(live)
        if abort_check is not None and live.get("windows"):
            reason = abort_check(from_raw(live, config.warmup_seconds))
            if reason:
                _signal_group(proc, signal.SIGTERM)
                return reason
    return None


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _read_live(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("started_at") else None


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    signal_group(proc.pid, sig)


def _finish(proc: subprocess.Popen[bytes]) -> int:
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        return proc.wait(timeout=10)
    finally:
        # No orphans: whatever is left of the group goes.
        _signal_group(proc, signal.SIGKILL)
