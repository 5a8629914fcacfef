"""Start, watch and stop long-lived child processes; find free loopback ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from scalectl.privileges import RunAs as RunAs  # re-exported: stack code imports it here
from scalectl.processes import signal_group

if TYPE_CHECKING:
    from scalectl.stack.state import Member


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at `host` right now (the kernel's pick); OSError
    when `host` cannot be bound."""
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
    """Start a detached process (own session, survives us) with output appended to `log`;
    return it. OSError when it cannot be started or `log` cannot be opened (a symlink).

    Its environment is `env` as given, else the allowlisted part of ours."""
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Logs hold request paths, ids and errors: ours alone, and never written through a link.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)  # a log an older scalectl created 0644
    with os.fdopen(fd, "ab") as out:
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


def identity(proc: psutil.Process | None, argv: Sequence[str] = ()) -> tuple[str, list[str]]:
    """What a process we started runs, for `member_process` to compare later: the
    executable psutil reports, and `argv` (what we started) or else its command line as
    psutil reports it. Right after exec /proc/PID/cmdline can still be empty, so a process
    just spawned is described by its argv; a server already serving, by what it shows."""
    exe, cmdline = (os.path.realpath(argv[0]) if argv else ""), list(argv)
    with contextlib.suppress(psutil.Error):
        if proc is not None:
            exe = proc.exe()
            # Valkey pads its retitled command line with empty strings.
            cmdline = cmdline or [part for part in proc.cmdline() if part]
    return exe, cmdline


def member_process(member: Member) -> psutil.Process | None:
    """The live process of a stack member, or None: a pid is the stack's only while its
    start time, executable and command line are those recorded when it was started (issue
    11: anyone can read a pid and start time from /proc and write them into a state file).
    None as well for a member recorded without them (state of an older scalectl)."""
    if member.exe is None or member.cmdline is None:
        return None
    proc = same_process(member.pid, member.create_time)
    if proc is None:
        return None
    try:
        if proc.exe() != member.exe or not same_command(proc.cmdline(), member.cmdline):
            return None
    except psutil.Error:
        return None
    return proc


def unverifiable(member: Member) -> bool:
    """True for a member recorded without its executable and command line."""
    return member.exe is None or member.cmdline is None


UNVERIFIABLE = (
    "the state does not record what was started (written by an older scalectl), so pid "
    "{pid} is not signalled; stop it yourself if it is the stack's"
)


def same_command(live: Sequence[str], started: Sequence[str]) -> bool:
    """Whether a live command line is the one started, allowing for the two ways the
    stack's servers retitle themselves: nginx's master prefixes "nginx: master process ",
    and Redis/Valkey shows "<program> <host>:<port>" (both from its own arguments)."""
    now, then = _words(live), _words(started)
    if not then or not now:
        return False
    if now == then or (len(now) > len(then) and now[-len(then) :] == then):
        return True
    known = set(then)
    return now[0] == then[0] and all(
        piece in known for word in now[1:] for piece in word.split(":")
    )


def _words(cmdline: Sequence[str]) -> list[str]:
    # psutil splits a retitled command line on spaces or NULs, padding it with empties.
    return " ".join(part for part in cmdline if part).split()


def stop(proc: psutil.Process, *, timeout: float = 10.0, sig: int = signal.SIGTERM) -> bool:
    """Ask the process (and the group it leads) to stop with `sig`, wait up to `timeout`,
    then kill what is left.

    Returns True when it stopped within the timeout (gracefully); raises nothing for a
    process that is gone or not ours to signal."""
    group = _group_members(proc)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # Only the group it leads (each member starts its own session): never another's.
        if os.getpgid(proc.pid) == proc.pid:
            signal_group(proc.pid, sig)
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
