"""Start, watch and stop long-lived child processes; find free loopback ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account to run a server as (PostgreSQL refuses to run as root)."""

    name: str
    uid: int
    gid: int


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something listens on the port. SO_REUSEADDR as every server sets it, so
    connections lingering in TIME_WAIT after a stop do not count as busy."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


# What a child of the stack inherits from the caller's environment: the basics a process
# needs to run and format text. Everything else (a CI's AWS_*, GITHUB_TOKEN, ...) stays
# behind; the stack sets what its members need explicitly (issue 11, finding 8).
INHERITED = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR"})


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The allowlisted part of `environ` (INHERITED and LC_*) for a child process."""
    return {k: v for k, v in environ.items() if k in INHERITED or k.startswith("LC_")}


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    run_as: RunAs | None = None,
) -> psutil.Process:
    """Start a detached process (own session, survives us) with output appended to `log`.

    Its environment is `env` as given, else the allowlisted part of ours."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else child_environment(os.environ),
            start_new_session=True,
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
        )
    return psutil.Process(proc.pid)


def same_process(pid: int, create_time: float) -> psutil.Process | None:
    """The live process with this pid and start time, or None (pid reused or gone)."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 0.01:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.Error:
        return None


def stop(proc: psutil.Process, *, timeout: float = 10.0, sig: int = signal.SIGTERM) -> bool:
    """Ask the process group to stop, wait up to `timeout`, then kill what is left.

    Returns True when it stopped within the timeout (gracefully)."""
    group = _group_members(proc)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(psutil.Error):
        proc.send_signal(sig)
    alive = wait_gone([proc, *group], timeout=timeout)
    graceful = not alive
    for leftover in alive:
        with contextlib.suppress(psutil.Error):
            leftover.kill()
    wait_gone(alive, timeout=5)
    return graceful


def wait_gone(procs: Sequence[psutil.Process], *, timeout: float) -> list[psutil.Process]:
    """Wait up to `timeout` for every process to exit; return those still running.

    An exited process counts as gone once it is a zombie. psutil.wait_procs waits for the
    pid to disappear, i.e. for the parent to reap it: a member of the stack outlives the
    `scalectl stack up` that started it, so its parent becomes PID 1, and some inits (a
    microVM's, a container's) reap only every second or two. That wait, once per member,
    was most of the 17 s an idle `stack down` took."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while True:
        alive = [p for p in alive if _running(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _running(proc: psutil.Process) -> bool:
    _reap(proc)
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _group_members(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _reap(proc: psutil.Process) -> None:
    # Our own children must be waited for, or they linger as zombies.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(proc.pid, os.WNOHANG)


def wait_for(
    check: Callable[[], object],
    *,
    timeout: float,
    interval: float = 0.1,
    reraise: tuple[type[BaseException], ...] = (),
) -> bool:
    """Poll `check()` until it returns truthy or `timeout` passes (bounded loop).

    Exceptions mean "not yet", except those in `reraise`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return True
        except reraise:
            raise
        except Exception:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
