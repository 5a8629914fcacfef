"""The web tier's one call into the queue side (refapp.queue_stats, owned by the worker
code): the queue figures for /metrics and the health checks. Synchronous, so it runs in a
thread, with a time limit.

A POST never calls the broker: it commits its job row into the outbox, and the relay in the
queue workers sends it (refapp.outbox)."""

from __future__ import annotations

import asyncio
from typing import Any


def _snapshot_sync() -> dict[str, dict[str, Any]]:
    from refapp import queue_stats  # imported lazily: dramatiq is heavy and owned by the queue side

    return dict(queue_stats.snapshot())


async def snapshot(timeout: float) -> dict[str, dict[str, Any]]:
    """Per queue: depth, oldest_age_seconds, dead_letters. Raises on any failure."""
    return await asyncio.wait_for(asyncio.to_thread(_snapshot_sync), timeout)
