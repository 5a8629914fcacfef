"""Signalling a child's process group: the one way scalectl reaches every process a child
started (gunicorn's and Dramatiq's workers, Locust's), not just the child itself."""

from __future__ import annotations

import contextlib
import os


def signal_group(leader: int, sig: int) -> None:
    """Send `sig` to the process group `leader` leads (a child started in a session of its
    own). A group that is gone, or not ours to signal, is left alone: nothing is raised."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, sig)
