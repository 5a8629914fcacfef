"""Run Locust in child processes: the command line and environment a run or a worker is
started with, the watch over it until it ends (loadtest.watch), Ctrl-C, and its results.
scalectl's own process never imports locust."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scalectl.errors import InputError
from scalectl.files import tail
from scalectl.loadtest.ratecurve import RateCurve
from scalectl.loadtest.rawjson import load_raw
from scalectl.loadtest.results import Results
from scalectl.loadtest.watch import (
    STARTUP_SAMPLES,
    AbortCheck,
    GeneratorStats,
    Progress,
    StopCheck,
    watch_locust,
)
from scalectl.processes import kill_group, signal_group
from scalectl.stack.process import child_environment

# Loaded by Locust beside the locustfile, in Locust's processes only.
PLUGIN = Path(__file__).resolve().parent / "child" / "plugin.py"
# Beside it: tells scalectl about a LoadTestShape and stops one at --max-run-time.
SHAPEBOUND = Path(__file__).resolve().parent / "child" / "shapebound.py"
# The longest a LoadTestShape may run by default: the shipped soak shape takes an hour.
DEFAULT_MAX_RUN_SECONDS = 2 * 3600
WORKER_WAIT_SECONDS = 120  # how long a `--master` waits for its workers to connect
# Locust's options that scalectl sets itself (_run_argv, _worker_argv) or that would undo a
# run it can measure and bound: a locustfile's own arguments must not override them.
OWNED_LONG_OPTIONS = (
    "--locustfile",
    "--host",
    "--users",
    "--spawn-rate",
    "--run-time",
    "--headless",
    "--autostart",
    "--autoquit",
    "--processes",
    "--master",
    "--master-bind-host",
    "--master-bind-port",
    "--master-host",
    "--master-port",
    "--expect-workers",
    "--expect-workers-max-wait",
    "--worker",
    "--tags",
    "--stop-timeout",
    "--only-summary",
    "--exit-code-on-error",
    "--scalectl-user-rate",
    "--scalectl-user-stages",
    "--scalectl-origin",
    "--scalectl-max-run-time",
    "--scalectl-slo",
)
OWNED_SHORT_OPTIONS = "fHurtTs"  # -f -H -u -r -t -T (tags) -s (stop timeout)


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
    # Locust's --stop-timeout: how long users may finish their task once the run time is up;
    # None leaves Locust's default (stop at once).
    stop_timeout_seconds: float | None = None
    # Given to Locust as they are, after scalectl's own options: the locustfile's own
    # arguments, user class names (settings.locust_arguments checked them).
    extra_args: tuple[str, ...] = ()
    # A LoadTestShape sets its own end (Locust then ignores -u, -r, -t): stopped after this.
    max_run_time_seconds: int = DEFAULT_MAX_RUN_SECONDS
    # host:port the master (or the one local process) serves /metrics on while the run goes
    # on (child/metrics.py); None serves nothing.
    metrics_address: str | None = None
    # The open model with a ramping rate (`--rate-stages`), instead of `rate`.
    rate_stages: RateCurve | None = None
    # What the plugin needs of the SLO file (SloSpec.for_plugin(): its checks, its groups
    # by status or tag) as JSON; "" for nothing.
    plugin_slo: str = ""

    @property
    def user_rate(self) -> float:
        """The open model's arrivals per second per user (a ramping rate's peak); 0 for the
        closed model."""
        if self.rate_stages is not None:
            return self.rate_stages.peak / self.users
        return self.rate / self.users if self.rate else 0.0


@dataclass(frozen=True)
class Shape:
    """The locustfile's LoadTestShape, as Locust ran it (child/shapebound.py told us)."""

    name: str  # its class name
    common_options: bool  # it reads -u, -r and -t (use_common_options); else they did not apply
    cut: bool  # stopped at RunConfig.max_run_time_seconds before it ended by itself


@dataclass
class RunOutcome:
    """What a run produced: the results, how busy the generator was, why it was stopped early (if
    it was), whether Ctrl-C interrupted it, Locust's exit code, and the locustfile's load shape
    (None without one)."""

    results: Results
    generator: GeneratorStats
    aborted: str | None  # why the run was stopped early, if it was
    interrupted: bool
    returncode: int
    shape: Shape | None = None


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
    abort), and a hard bound of the run time plus GRACE_SECONDS (loadtest.watch). Ctrl-C stops
    Locust, which still writes its results.

    Returns the RunOutcome. Raises InputError when Locust exits without results (the tail of its
    log says why) and ScalectlError when its results cannot be read.
    """
    with tempfile.TemporaryDirectory(prefix="scalectl-loadtest-") as tmp:
        raw_path, live_path = Path(tmp) / "raw.json", Path(tmp) / "live.json"
        shape_path = Path(tmp) / "shape.json"
        argv = _run_argv(config)
        env = {**_run_env(config, raw_path, live_path), "SCALECTL_SHAPE_OUT": str(shape_path)}
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
            aborted = watch_locust(
                proc,
                stats,
                live_path,
                # A master also waits for its workers to connect.
                bound_seconds=config.run_time_seconds
                + (config.stop_timeout_seconds or 0)
                + (WORKER_WAIT_SECONDS if config.master is not None else 0),
                warmup_seconds=config.warmup_seconds,
                progress=progress,
                abort_check=abort_check,
                should_stop=should_stop,
                shape_path=shape_path,
                shape_bound_seconds=config.max_run_time_seconds
                + (config.stop_timeout_seconds or 0),
            )
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
            stats.local = False
        shape = _read_shape(shape_path)
        return RunOutcome(results, stats, aborted, interrupted, returncode, shape)


def run_worker(
    locustfile: Path,
    master_host: str,
    master_port: int,
    processes: int,
    max_seconds: int,
    extra_args: tuple[str, ...] = (),
) -> int:
    """Locust worker process(es) for a `--master` elsewhere: the master sends the host, the
    users and the run time, and collects the measurements; `extra_args` go to Locust as they
    are. Returns Locust's exit code."""
    argv = _worker_argv(locustfile, master_host, master_port, processes) + list(extra_args)
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
        kill_group(proc.pid)


def _read_shape(path: Path) -> Shape | None:
    try:
        data = json.loads(path.read_text())
        return Shape(str(data["shape"]), bool(data["common_options"]), bool(data["cut"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no shape in the locustfile


def _run_argv(config: RunConfig) -> list[str]:
    """Locust's command line for `config`: headless, our plugins beside the locustfile."""
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{config.locustfile},{PLUGIN},{SHAPEBOUND}",
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
        "--exit-code-on-error",
        "0",
        "--scalectl-max-run-time",
        str(config.max_run_time_seconds),
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
    if config.stop_timeout_seconds is not None:
        argv += ["--stop-timeout", f"{config.stop_timeout_seconds:g}"]
    if config.tags:
        argv += ["--tags", *config.tags]
    if config.plugin_slo:
        # Locust's master passes it on to its workers, as the rate.
        argv += ["--scalectl-slo", config.plugin_slo]
    if config.rate_stages is not None:
        # Each user's share; Locust's master passes it on to its workers.
        argv += ["--scalectl-user-stages", config.rate_stages.scaled(1 / config.users).text()]
    elif config.rate:
        argv += ["--scalectl-user-rate", repr(config.user_rate)]
    return argv + list(config.extra_args)


def _run_env(config: RunConfig, raw_path: Path, live_path: Path) -> dict[str, str]:
    """Locust's environment: where the plugin writes raw.json and the live file."""
    return {
        **(os.environ if config.inherit_environment else child_environment(os.environ)),
        **config.env,
        "SCALECTL_RAW_OUT": str(raw_path),
        "SCALECTL_LIVE_OUT": str(live_path),
        "PYTHONUNBUFFERED": "1",
        **({"SCALECTL_METRICS_ADDR": config.metrics_address} if config.metrics_address else {}),
    }


def _worker_argv(locustfile: Path, master_host: str, master_port: int, processes: int) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{locustfile},{PLUGIN},{SHAPEBOUND}",
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
    return argv


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    signal_group(proc.pid, sig)


def _finish(proc: subprocess.Popen[bytes]) -> int:
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        return proc.wait(timeout=10)
    finally:
        # No orphans: whatever is left of the group goes, and is gone when we return.
        kill_group(proc.pid)
