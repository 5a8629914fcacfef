"""The queue worker's CPU priority (WORKER_NICE): where jobs share cores with the web tier
(one machine), requests go first and jobs take what is left."""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path

import dramatiq
from dramatiq.middleware import Middleware

from refapp import settings

AUTOGROUP = Path("/proc/self/autogroup")
log = logging.getLogger(__name__)


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


def _own_session() -> bool:
    """Whether this process's session is the queue side's own: led by this process, or by
    the Dramatiq command that forked it (a worker run from a shell or a test runner has the
    shell or the runner above it, and that session is not ours to renice)."""
    leader = os.getsid(0)
    if leader == os.getpid():
        return True
    if leader != os.getppid():
        return False
    try:
        argv = Path(f"/proc/{leader}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(os.fsdecode(arg)).name.startswith("dramatiq") for arg in argv[:3])


def lower_session_priority(nice: int, attempts: int = 20) -> bool:
    """With Linux's autogroup scheduling (`kernel.sched_autogroup_enabled`) the CPU is
    shared between sessions first, and a process's own nice counts only inside its session:
    a niced worker in a session of its own still got as much CPU as the whole web tier. So
    the session's nice is raised too, when the session is the queue side's own. True if it
    was raised."""
    if not _own_session():
        return False
    for _ in range(attempts):
        try:
            AUTOGROUP.write_text(f"{nice}\n")
            return True
        except BlockingIOError:
            # Without CAP_SYS_ADMIN the kernel takes one such write per 100 ms machine-wide;
            # workers that boot together (several worker processes, several commands) wait.
            time.sleep(random.uniform(0.1, 0.2))
        except OSError:  # no autogroup support, or not allowed: the process nice still applies
            return False
    log.warning("WORKER_NICE: the session's CPU priority could not be lowered (busy)")
    return False
