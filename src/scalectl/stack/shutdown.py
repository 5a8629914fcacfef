"""Stopping the stack's members: in which order, with which signal, and how long each may
drain before it is killed.

Members stop tier by tier, and the members of one tier concurrently: the balancer and the
scraper first (no new request reaches an app), then the apps and the queue workers (each
drains its in-flight requests or jobs), then the data stores they were using. An idle stack
stops in about a second and a half; work in flight is waited for up to each member's drain
window (docs/stack.md)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

from scalectl.stack.process import UNVERIFIABLE, member_process, stop, unverifiable, wait_gone
from scalectl.stack.state import Member, StackState, clear, load

Progress = Callable[[str], object]  # a callback's return value is ignored

TIERS: tuple[tuple[str, ...], ...] = (
    ("nginx", "prometheus"),
    ("app", "worker"),
    ("redis", "postgres"),
)
# How each kind is asked to stop; SIGTERM for the rest (gunicorn, Dramatiq, Redis, Prometheus
# all drain or flush on it).
SIGNALS = {
    "postgres": signal.SIGINT,  # "fast" shutdown: no waiting for clients (there are none left)
    "nginx": signal.SIGQUIT,  # graceful: finish the requests in flight, close idle keep-alives
}
# Beyond a member's drain window: its own exit once drained (closing pools, flushing logs).
EXIT_MARGIN_SECONDS = 10.0
# For state written before members recorded their drain window.
FALLBACK_TIMEOUTS = {"app": 45.0, "worker": 70.0, "nginx": 45.0, "postgres": 15.0}


@dataclass(frozen=True)
class Stopped:
    """How one member stopped."""

    name: str
    graceful: bool  # False: killed after its timeout, or already gone (crashed)
    seconds: float = 0.0  # from the signal until it (and its children) had exited
    # Not signalled: the state does not record what was started (an older scalectl's).
    skipped: bool = False


def down(state_dir: Path, *, progress: Progress = lambda _: None) -> list[Stopped] | None:
    """Stop every member and forget the stack (kept when a member was not verified as
    the stack's, so not stopped). Returns how each member stopped, or None when no stack
    runs in `state_dir`; InputError for a state that cannot be trusted (state.load).
    Imports nothing of scalectl.plan, so `scalectl stack down` starts quickly."""
    state_dir = state_dir.absolute()
    state = load(state_dir)
    if state is None:
        return None
    stopped = stop_members(state, progress=progress)
    # Members left alone are still listed: the state is what tells their pids.
    if not any(s.skipped for s in stopped):
        clear(state_dir)
    return stopped


def stop_timeout(member: Member) -> float:
    """How long `member` may take to stop before it is killed."""
    if member.drain_seconds is not None:
        return member.drain_seconds + EXIT_MARGIN_SECONDS
    return FALLBACK_TIMEOUTS.get(member.kind, 10.0)


def stop_members(state: StackState, *, progress: Progress) -> list[Stopped]:
    """Stop every member of `state`, tier by tier (unknown kinds last); bounded by the sum of
    each tier's longest timeout. Returns how each one stopped; raises nothing."""
    known = {kind for tier in TIERS for kind in tier}
    tiers = [[m for m in state.members if m.kind in kinds] for kinds in TIERS]
    tiers.append([m for m in state.members if m.kind not in known])
    result: list[Stopped] = []
    for members in tiers:
        if not members:
            continue
        with ThreadPoolExecutor(max_workers=len(members)) as pool:
            result.extend(pool.map(lambda m: stop_member(m, progress=progress), members))
    return result


def stop_member(member: Member, *, progress: Progress = lambda _: None) -> Stopped:
    """Stop one member gracefully (then forcefully). A member that crashed may have left
    processes of its group behind (a gunicorn or Dramatiq worker whose master was killed):
    those are stopped too. A member recorded without what was started is not signalled
    (`skipped`). Returns how it stopped; raises nothing."""
    started = time.monotonic()
    if unverifiable(member):
        progress(f"not stopping {member.name}: " + UNVERIFIABLE.format(pid=member.pid))
        return Stopped(member.name, graceful=False, skipped=True)
    proc = member_process(member)
    if proc is None:
        left = orphans(member.pid, member.create_time, member.exe)
        if left:
            progress(f"stopping what {member.name} left behind ({len(left)} processes)")
            _stop_orphans(left, SIGNALS.get(member.kind, signal.SIGTERM))
        return Stopped(member.name, graceful=False, seconds=_since(started))
    progress(f"stopping {member.name}")
    sig = SIGNALS.get(member.kind, signal.SIGTERM)
    graceful = stop(proc, timeout=stop_timeout(member), sig=sig)
    return Stopped(member.name, graceful, seconds=_since(started))


def orphans(pid: int, create_time: float, exe: str | None) -> list[psutil.Process]:
    """Live processes still in the process group of a dead member (every member leads its
    own group: process.spawn starts a new session) that run its executable (the workers a
    master forked). Empty when the pid now belongs to another process, whose group would
    not be ours, or when the member's executable is not known."""
    if not exe:
        return []
    with contextlib.suppress(psutil.Error):
        leader = psutil.Process(pid)
        same = abs(leader.create_time() - create_time) <= 0.01
        if not same or leader.status() != psutil.STATUS_ZOMBIE:
            return []
    found = []
    for proc in psutil.process_iter():  # bounded: the process table
        with contextlib.suppress(psutil.Error, OSError):
            if (
                proc.pid != pid
                and os.getpgid(proc.pid) == pid
                and proc.create_time() >= create_time - 0.01
                and proc.status() != psutil.STATUS_ZOMBIE
                and proc.exe() == exe
            ):
                found.append(proc)
    return found


def _stop_orphans(procs: list[psutil.Process], sig: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)
    left = wait_gone(procs, timeout=EXIT_MARGIN_SECONDS)
    for leftover in left:
        with contextlib.suppress(psutil.Error):
            leftover.kill()
    wait_gone(left, timeout=5)


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
