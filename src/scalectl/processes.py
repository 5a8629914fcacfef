"""Signalling a child's process group: the one way scalectl reaches every process a child
started (gunicorn's and Dramatiq's workers, Locust's), not just the child itself."""

from __future__ import annotations

import contextlib
import os
import signal
import time


def signal_group(leader: int, sig: int) -> None:
    """Send `sig` to the process group `leader` leads (a child started in a session of its
    own). A group that is gone, or not ours to signal, is left alone: nothing is raised."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, sig)


def kill_group(leader: int, timeout: float = 2.0) -> None:
    """SIGKILL the group `leader` leads and wait, at most `timeout` seconds, until none of
    it is left: the signal is delivered asynchronously, and a caller that returns at once
    would leave processes (a Locust worker, say) running a moment longer."""
    signal_group(leader, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(leader, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.02)
