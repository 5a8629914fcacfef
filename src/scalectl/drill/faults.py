"""Faults acted on the local stack's own processes, found through its state directory.

Every process is looked up by the pid, start time, executable and command line `scalectl
stack` recorded, so a drill can never signal a process that merely reuses a pid or that a
forged state names; anything not in the state is refused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil

from scalectl.drill.engine import DrillContext
from scalectl.errors import InputError
from scalectl.netguard import loopback_client
from scalectl.stack.process import UNVERIFIABLE, member_process, unverifiable, wait_gone
from scalectl.stack.state import Member, load


def member(ctx: DrillContext, name: str) -> Member:
    """The member `name` as state.json records it now (a restart changes its pid).
    Raises InputError when the stack has no such member."""
    state = load(ctx.state_dir) or ctx.state
    found = state.member(name)
    if found is None:
        names = ", ".join(m.name for m in state.members)
        raise InputError(f"no member '{name}' in the stack at {ctx.state_dir} (members: {names})")
    return found


def process(ctx: DrillContext, name: str) -> psutil.Process:
    """The running process of the stack member `name`, as the stack started it. Raises
    InputError for anything else: no such member, a process that merely reuses its pid, a
    record that cannot be verified."""
    m = member(ctx, name)
    if unverifiable(m):
        raise InputError(f"{name}: " + UNVERIFIABLE.format(pid=m.pid))
    proc = member_process(m)
    if proc is None:
        raise InputError(f"{name} (pid {m.pid}) is not running as the stack started it")
    return proc


def alive(ctx: DrillContext, name: str) -> bool:
    """Whether the member `name` runs as the stack started it. Raises InputError when the
    stack has no such member."""
    m = member(ctx, name)
    return member_process(m) is not None


def members_of_kind(ctx: DrillContext, kind: str) -> list[Member]:
    """The stack's members of `kind` (app, worker, ...), in state.json's order."""
    state = load(ctx.state_dir) or ctx.state
    return [m for m in state.members if m.kind == kind]


def children(proc: psutil.Process) -> list[psutil.Process]:
    """The live (not zombie) children of `proc`; none when it is gone."""
    with contextlib.suppress(psutil.Error):
        return [c for c in proc.children() if c.status() != psutil.STATUS_ZOMBIE]
    return []


def busiest_child(proc: psutil.Process, port: int | None) -> psutil.Process:
    """The child (a gunicorn worker) holding the most established client connections on
    `port`: killing it is sure to cut requests in flight. Raises InputError when `proc`
    has no children."""
    workers = children(proc)
    if not workers:
        raise InputError(f"pid {proc.pid} has no worker processes to kill")

    def connections(p: psutil.Process) -> int:
        try:
            conns = p.net_connections(kind="tcp")
        except psutil.Error:
            return 0
        return sum(
            1
            for c in conns
            if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
        )

    return max(workers, key=connections)


def kill(proc: psutil.Process, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to `proc` (SIGKILL by default), unless it is gone already."""
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(sig)


def stop_group(proc: psutil.Process, sig: int, timeout: float) -> float:
    """Signal `proc` and wait up to `timeout` s for it to exit; then kill whatever is left of
    it and its children. Returns the seconds until it exited (or was killed)."""
    started = time.monotonic()
    group = children(proc)
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(sig)
    # Exited, not reaped: the stack's init may reap only every second or two.
    left = wait_gone([proc], timeout=timeout)
    for leftover in [*left, *group]:
        with contextlib.suppress(psutil.Error):
            if leftover.is_running():
                leftover.kill()
    wait_gone(group, timeout=5)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(proc.pid, os.WNOHANG)
    return round(time.monotonic() - started, 2)


def wait_replaced(
    proc: psutil.Process,
    before: set[int],
    gone: int,
    url: str | None,
    timeout: float,
    auth: dict[str, str],
) -> float | None:
    """Seconds until the master has as many workers as `before` (its workers before the
    kill) again and one it forked after `gone` died has answered a request (the app's
    /api/debug/sleep says which pid answered); None if that did not happen within
    `timeout`. A fork alone is not a replacement: a worker that crashes while booting
    would pass."""
    import httpx  # only the error types: the client is netguard's

    started = time.monotonic()
    deadline = started + timeout
    count = len(before)
    new: set[int] = set()
    # A premium key (the app's /api needs one; the tier and its rate limit come from the
    # key). A new connection per request: a kept-alive one stays with the worker that
    # accepted it.
    headers = {**auth, "Connection": "close"}
    with loopback_client(2.0, headers=headers) as client:
        while time.monotonic() < deadline:
            pids = {c.pid for c in children(proc)}
            new |= pids - before - {gone}
            if len(pids) >= count and gone not in pids and new:
                if url is None:
                    return round(time.monotonic() - started, 2)
                try:
                    answer = client.get(f"{url}/api/debug/sleep", params={"ms": 0}).json()
                except (httpx.HTTPError, ValueError):
                    answer = {}
                if answer.get("pid") in new:
                    return round(time.monotonic() - started, 2)
            time.sleep(0.05)
    return None
