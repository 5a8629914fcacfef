"""The web tier's two calls into the queue side (refapp.tasks, refapp.queue_stats, owned
by the worker code). Both are synchronous, so they run in threads, with a time limit, and
any failure is contained: a submission whose enqueue failed stays `queued` in PostgreSQL and
the queue side's sweeper enqueues it again. A POST does not wait for its enqueue
(`Enqueues`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


def _enqueue_sync(job_id: str, submission_id: str, kind: str, priority: str) -> None:
    from refapp import tasks  # imported lazily: dramatiq is heavy and owned by the queue side

    tasks.enqueue(job_id, submission_id, kind, priority)


def _snapshot_sync() -> dict[str, dict[str, Any]]:
    from refapp import queue_stats

    return dict(queue_stats.snapshot())


async def enqueue(
    job_id: str, submission_id: str, kind: str, priority: str, timeout: float
) -> bool:
    try:
        await asyncio.wait_for(
            asyncio.to_thread(_enqueue_sync, job_id, submission_id, kind, priority), timeout
        )
    except Exception as exc:
        log.warning(
            "enqueue failed; the sweeper will retry",
            extra={"job_id": job_id, "error": repr(exc)},
        )
        return False
    return True


async def snapshot(timeout: float) -> dict[str, dict[str, Any]]:
    """Per queue: depth, oldest_age_seconds, dead_letters. Raises on any failure."""
    return await asyncio.wait_for(asyncio.to_thread(_snapshot_sync), timeout)


async def preload() -> None:
    """Import the task module at start, off the event loop, so the first POST is not slow."""
    try:
        await asyncio.to_thread(__import__, "refapp.tasks")
    except Exception as exc:
        log.warning("refapp.tasks unavailable; jobs stay queued", extra={"error": repr(exc)})


class Enqueues:
    """Enqueues sent while the request answers: the job is already recorded in PostgreSQL
    (a lost enqueue leaves it `queued` for the sweeper), so the client need not wait for the
    broker. Not a per-request background task: uvicorn reads a keep-alive connection's next
    request only once the last one's ASGI call returns, so a proxy's next request on that
    connection would wait for the broker instead. Shutdown drains what is still pending."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._pending: set[asyncio.Task[bool]] = set()

    def send(self, job_id: str, submission_id: str, kind: str, priority: str) -> None:
        # The task copies the request's context: its log lines keep the request id.
        task = asyncio.create_task(enqueue(job_id, submission_id, kind, priority, self.timeout))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for pending enqueues (each is bounded by the enqueue timeout)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=self.timeout + 1)
