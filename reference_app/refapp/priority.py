"""The queue worker's CPU priority (WORKER_NICE): where jobs share cores with the web tier
(one machine), requests go first and jobs take what is left."""

from __future__ import annotations

import os
from pathlib import Path

import dramatiq
from dramatiq.middleware import Middleware

from refapp import settings

AUTOGROUP = Path("/proc/self/autogroup")


class Niceness(Middleware):
    """Lowers the worker process's CPU priority by WORKER_NICE (0: unchanged) before it
    consumes: where jobs share cores with the web tier (one machine), requests go first and
    jobs take what is left. Only a worker boots it: the web tier imports refapp.tasks only to
    enqueue."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        nice = settings.get().worker_nice
        if nice > 0:
            os.nice(nice)
            lower_session_priority(nice)


def lower_session_priority(nice: int) -> bool:
    """With Linux's autogroup scheduling (`kernel.sched_autogroup_enabled`) the CPU is
    shared between sessions first, and a process's own nice counts only inside its session:
    a niced worker in a session of its own still got as much CPU as the whole web tier. So
    the session's nice is raised too, but only when the session is the queue side's own (its
    leader is this process or the Dramatiq main process that forked it), never a shell's.
    True if it was raised."""
    if os.getsid(0) not in (os.getpid(), os.getppid()):
        return False
    try:
        AUTOGROUP.write_text(f"{nice}\n")
    except OSError:  # no autogroup support, or not allowed: the process nice still applies
        return False
    return True
