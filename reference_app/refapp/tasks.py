"""Jobs: analyse a submission, render its report, and the periodic cleanup.

Run with `dramatiq refapp.tasks --processes P --threads T --queues ...` (see refapp.broker
for the queue names). The web tier commits a `jobs` row; the outbox relay each worker
process runs (refapp.outbox) sends it to its queue with `enqueue()`.

Exactly-once effects on at-least-once delivery: Dramatiq redelivers a message whose worker
died, and may deliver one twice (a sweep re-enqueue, a worker presumed dead). So a handler
  1. marks the job running and counts the attempt (short transaction, visible at once);
  2. does the CPU work holding no database connection (the plan's sizing counts a
     connection per thread only for `db_time_fraction` of a job);
  3. in one transaction, locks the job row (SELECT ... FOR UPDATE), stops if it is already
     `done`, upserts the result keyed by submission, and sets `done` with
     `completions = completions + 1`.
A delivery killed anywhere before step 3 commits leaves nothing behind, and two deliveries
racing to step 3 serialise on the row lock, so `completions` ends at exactly 1.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
import psycopg
import redis
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware
from dramatiq.middleware.threading import Interrupt
from psycopg.types.json import Jsonb

from refapp import analysis, cachekeys, outbox, settings, worker_db
from refapp.broker import (
    ANALYSE_QUEUES,
    QUEUE_CLEANUP,
    QUEUE_DEFAULT,
    QUEUE_HIGH,
    QUEUE_LOW,
    QUEUE_RENDER,
    broker,
)
from refapp.priority import Niceness

log = logging.getLogger(__name__)

# A submission titled like this fails every attempt: the way to watch retries with backoff
# and dead-lettering end to end.
FAIL_PREFIX = "__fail__"

# Namespace for the render job of an analyse job: a redelivered analyse that re-inserts it
# hits the same primary key instead of creating a second render job.
_RENDER_JOB_NS = uuid.UUID("8f4f3c1e-2f55-4a53-9d44-5b0c7d3c6a10")

CLEANUP_LEASE_KEY = "refapp:cleanup:lease"
_CLEANUP_BATCH = 1000  # rows per cleanup step, so one run stays well under statement_timeout


JobActor = dramatiq.Actor[[str, str], None]


class DesignedFailure(RuntimeError):
    """Raised for FAIL_PREFIX submissions."""


# --- the web tier's cache --------------------------------------------------------------

_cache_lock = threading.Lock()
_cache_client: redis.Redis | None = None


def _invalidate(job_id: str, submission_id: str | None = None, user_id: int | None = None) -> None:
    """Drop what the web tier cached about rows a job just changed (refapp.cachekeys).
    Best effort: the cache's TTLs bound the staleness if Redis is away, and a job must
    never fail or retry because of the cache."""
    global _cache_client
    cfg = settings.get()
    if not cfg.redis_url:
        return
    try:
        if _cache_client is None:
            with _cache_lock:
                if _cache_client is None:
                    _cache_client = redis.Redis.from_url(
                        cfg.redis_url,
                        socket_timeout=cfg.redis_socket_timeout,
                        socket_connect_timeout=cfg.redis_socket_timeout,
                    )
        invalidation = cachekeys.Invalidation.for_write(
            submission_ids=[submission_id] if submission_id else [],
            user_ids=[user_id] if user_id is not None else [],
            job_ids=[job_id],
        )
        cachekeys.invalidate_sync(_cache_client, invalidation)
    except redis.RedisError as exc:
        log.warning("cache invalidation for job %s skipped: %s", job_id, exc)


# --- the three steps shared by the job handlers ---------------------------------------


@dataclass(frozen=True)
class _Started:
    title: str
    content: str
    deleted: bool
    user_id: int


def _start(job_id: str) -> _Started | None:
    """Step 1: the job's submission, or None when the job is already done or gone (a
    duplicate or late delivery: nothing to do)."""
    with worker_db.transaction() as conn:
        row = conn.execute(
            """
            UPDATE jobs AS j
               SET status = 'running', attempts = j.attempts + 1, started_at = now()
              FROM submissions AS s
             WHERE j.id = %s AND s.id = j.submission_id AND j.status <> 'done'
            RETURNING s.title, s.content, s.deleted_at IS NOT NULL, s.user_id
            """,
            (job_id,),
        ).fetchone()
    if row is None:
        log.info("job %s is done or gone; skipping this delivery", job_id)
        return None
    _invalidate(job_id)
    return _Started(title=row[0], content=row[1], deleted=row[2], user_id=row[3])


def _finish(
    job_id: str,
    started: _Started,
    submission_id: str,
    result: dict[str, Any],
    effects: Callable[[psycopg.Connection], None],
) -> bool:
    """Step 3: apply `effects` and mark the job done, once. False if another delivery
    finished it first."""
    with worker_db.transaction() as conn:
        row = conn.execute("SELECT status FROM jobs WHERE id = %s FOR UPDATE", (job_id,)).fetchone()
        if row is None or row[0] == "done":
            log.info("job %s already completed by another delivery", job_id)
            return False
        effects(conn)
        conn.execute(
            """
            UPDATE jobs
               SET status = 'done', completions = completions + 1, finished_at = now(),
                   result = %s, error = NULL
             WHERE id = %s
            """,
            (Jsonb(result), job_id),
        )
    _invalidate(job_id, submission_id, started.user_id)
    return True


def _record_failure(job_id: str, exc: BaseException) -> None:
    """Make a failed attempt visible; the retry (or the dead letter) comes from Dramatiq."""
    try:
        with worker_db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET status = 'failed', error = %s WHERE id = %s AND status <> 'done'",
                (f"{type(exc).__name__}: {exc}"[:2000], job_id),
            )
        _invalidate(job_id)
    except Exception:
        # The job's own exception matters more; this one is only logged.
        log.exception("could not record the failure of job %s", job_id)


def _guarded(job_id: str, body: Callable[[], None]) -> None:
    try:
        body()
    except (Exception, Interrupt) as exc:  # Interrupt: TimeLimitExceeded, Shutdown
        _record_failure(job_id, exc)
        raise


def _deleted(_: psycopg.Connection) -> None:
    """No effects for a soft-deleted submission; cleanup purges it later."""


# --- actors -----------------------------------------------------------------------------


def _analyse(job_id: str, submission_id: str) -> None:
    def body() -> None:
        started = _start(job_id)
        if started is None:
            return
        if started.deleted:
            _finish(job_id, started, submission_id, {"skipped": "submission deleted"}, _deleted)
            return
        if started.title.startswith(FAIL_PREFIX):
            raise DesignedFailure(f"submission {submission_id} is designed to fail")
        result = analysis.analyse(started.content, settings.get().analysis_work_factor)
        render_job_id = str(uuid.uuid5(_RENDER_JOB_NS, job_id))

        def effects(conn: psycopg.Connection) -> None:
            conn.execute(
                """
                INSERT INTO analyses (submission_id, job_id, word_count, unique_words,
                                      top_terms, readability, digest)
                VALUES (%s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (submission_id) DO UPDATE
                   SET job_id = EXCLUDED.job_id, word_count = EXCLUDED.word_count,
                       unique_words = EXCLUDED.unique_words, top_terms = EXCLUDED.top_terms,
                       readability = EXCLUDED.readability, digest = EXCLUDED.digest,
                       created_at = now()
                """,
                (
                    submission_id,
                    job_id,
                    result.word_count,
                    result.unique_words,
                    Jsonb(result.as_json()["top_terms"]),
                    result.readability,
                    result.digest,
                ),
            )
            conn.execute(
                "UPDATE submissions SET status = 'analysed', updated_at = now() WHERE id = %s",
                (submission_id,),
            )
            # The render job is committed with the analysis, into the outbox: a relay
            # sends it once this commits (refapp.outbox).
            conn.execute(
                """
                INSERT INTO jobs (id, submission_id, kind) VALUES (%s, %s, 'render')
                ON CONFLICT (id) DO NOTHING
                """,
                (render_job_id, submission_id),
            )

        _finish(job_id, started, submission_id, result.as_json(), effects)

    _guarded(job_id, body)


def _render(job_id: str, submission_id: str) -> None:
    def body() -> None:
        started = _start(job_id)
        if started is None:
            return
        if started.deleted:
            _finish(job_id, started, submission_id, {"skipped": "submission deleted"}, _deleted)
            return
        with worker_db.transaction() as conn:
            row = conn.execute(
                """
                SELECT word_count, unique_words, top_terms, readability, digest
                  FROM analyses WHERE submission_id = %s
                """,
                (submission_id,),
            ).fetchone()
        if row is None:
            raise LookupError(f"no analysis for submission {submission_id} yet")
        result = analysis.Analysis(
            word_count=row[0],
            unique_words=row[1],
            top_terms=[(term, count) for term, count in row[2]],
            readability=row[3],
            digest=row[4],
        )
        page = analysis.render_report(started.title, result)

        def effects(conn: psycopg.Connection) -> None:
            conn.execute(
                """
                INSERT INTO reports (submission_id, job_id, html) VALUES (%s, %s, %s)
                ON CONFLICT (submission_id) DO UPDATE
                   SET job_id = EXCLUDED.job_id, html = EXCLUDED.html, created_at = now()
                """,
                (submission_id, job_id, page),
            )
            conn.execute(
                "UPDATE submissions SET status = 'rendered', updated_at = now() WHERE id = %s",
                (submission_id,),
            )

        _finish(job_id, started, submission_id, {"html_bytes": len(page.encode())}, effects)

    _guarded(job_id, body)


# One analyse actor per tier: the same function, each on its own queue. Dramatiq orders the
# messages a worker has fetched by actor priority (lower first), so a worker consuming
# several tiers starts high before default before low.
def _job_actor(fn: Callable[[str, str], None], name: str, queue: str, priority: int) -> JobActor:
    return dramatiq.actor(actor_name=name, queue_name=queue, priority=priority)(fn)


analyse_submission_high = _job_actor(_analyse, "analyse_submission_high", QUEUE_HIGH, 0)
analyse_submission = _job_actor(_analyse, "analyse_submission", QUEUE_DEFAULT, 10)
analyse_submission_low = _job_actor(_analyse, "analyse_submission_low", QUEUE_LOW, 30)
render_report = _job_actor(_render, "render_report", QUEUE_RENDER, 20)
_ANALYSE_ACTORS = {
    "high": analyse_submission_high,
    "default": analyse_submission,
    "low": analyse_submission_low,
}
JOB_ACTORS = frozenset(a.actor_name for a in (*_ANALYSE_ACTORS.values(), render_report))


# No retries: the next tick is the retry, and a retried tick would run beside it.
@dramatiq.actor(queue_name=QUEUE_CLEANUP, priority=40, max_retries=0)
def cleanup() -> None:
    """Purge soft-deleted submissions past retention (cascading to their jobs, analyses and
    reports), then re-enqueue jobs left `queued` too long: a message the broker lost (a
    Redis restart without persistence), or a job still in the outbox because no relay ran
    (marked relayed here, so a relay does not send it again). Stuck: sent (or, unsent,
    committed) longer ago than the threshold. Re-enqueueing one that is in fact still
    waiting only costs a duplicate delivery, which the handlers absorb."""
    cfg = settings.get()
    try:
        with worker_db.transaction() as conn:
            purged = conn.execute(
                """
                DELETE FROM submissions WHERE id IN (
                    SELECT id FROM submissions
                     WHERE deleted_at IS NOT NULL
                       AND deleted_at < now() - make_interval(secs => %s)
                     LIMIT %s)
                """,
                (cfg.cleanup_deleted_after_seconds, _CLEANUP_BATCH),
            ).rowcount
    except psycopg.errors.UndefinedTable:
        # The first tick can beat the web tier's schema migration at start-up.
        log.info("cleanup: no schema yet; the next tick sweeps")
        return
    with worker_db.transaction() as conn:
        # relayed_at moves forward so the next tick does not enqueue the same job again
        # before this copy had a chance to run.
        stuck = conn.execute(
            """
            WITH stuck AS (
                SELECT j.id FROM jobs AS j
                 WHERE j.status = 'queued' AND j.kind IN ('analyse', 'render')
                   AND coalesce(j.relayed_at, j.enqueued_at) < now() - make_interval(secs => %s)
                 ORDER BY j.enqueued_at
                 LIMIT %s
                 FOR UPDATE SKIP LOCKED)
            UPDATE jobs AS j SET relayed_at = now()
              FROM stuck, submissions AS s
             WHERE j.id = stuck.id AND s.id = j.submission_id AND s.deleted_at IS NULL
            RETURNING j.id::text, j.submission_id::text, j.kind, s.priority
            """,
            (cfg.cleanup_stuck_queued_seconds, _CLEANUP_BATCH),
        ).fetchall()
    for job_id, submission_id, kind, priority in stuck:
        enqueue(job_id, submission_id, kind, priority if priority in ANALYSE_QUEUES else "default")
    log.info("cleanup: purged %d submissions, re-enqueued %d stuck jobs", purged, len(stuck))


# --- the relay's and the sweep's way to the broker ---------------------------------------


def enqueue(job_id: str, submission_id: str, kind: str, priority: str) -> None:
    """Send a committed job to its queue: kind "analyse" goes to the tier of `priority`
    (high | default | low), kind "render" to the render queue. Raises ValueError for an
    unknown kind or priority, redis.RedisError when the broker is unreachable (the job row
    stays in the outbox for the relay's next try)."""
    for value in (job_id, submission_id):
        uuid.UUID(value)  # a malformed id fails here, in the caller, not in a worker
    if kind == "analyse":
        if priority not in _ANALYSE_ACTORS:
            raise ValueError(
                f"unknown priority {priority!r}; expected one of {list(ANALYSE_QUEUES)}"
            )
        actor = _ANALYSE_ACTORS[priority]
    elif kind == "render":
        actor = render_report
    else:
        raise ValueError(f"unknown job kind {kind!r}; expected 'analyse' or 'render'")
    # The process's global broker, not the one the actor was declared with: the same
    # thing in a worker, and lets tests point a process elsewhere.
    dramatiq.get_broker().enqueue(actor.message(job_id, submission_id))


# --- worker-process middleware ----------------------------------------------------------


class JobStates(Middleware):
    """Keeps `jobs.status` in step with what Dramatiq decided about a message."""

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        # A nack moves the message to its queue's dead letters (.XQ): retries exhausted,
        # or AgeLimit dropped it. The job is dead and its submission failed.
        if message.actor_name not in JOB_ACTORS or len(message.args) != 2:
            return
        job_id, submission_id = message.args
        with worker_db.transaction() as conn:
            dead = conn.execute(
                """
                UPDATE jobs SET status = 'dead', finished_at = now(),
                       error = coalesce(error, 'dead-lettered by the broker')
                 WHERE id = %s AND status <> 'done'
                """,
                (job_id,),
            ).rowcount
            if not dead:
                return  # another delivery completed it: the submission did not fail
            row = conn.execute(
                """
                UPDATE submissions SET status = 'failed', updated_at = now() WHERE id = %s
                RETURNING user_id
                """,
                (submission_id,),
            ).fetchone()
        _invalidate(job_id, submission_id, row[0] if row else None)
        log.warning("job %s is dead (moved to the dead-letter queue)", job_id)


class CleanupSchedule(Middleware):
    """Sends `cleanup` about once per CLEANUP_INTERVAL_SECONDS across the whole fleet.

    Every worker process that consumes the cleanup queue polls a Redis lease
    (SET NX PX interval); whichever takes it sends one cleanup message. Nothing has to be
    handed over when workers come and go: the schedule is the lease, not a chain of
    delayed messages (which is lost when a worker dies between running a tick and sending
    the next, or doubled when such a tick is redelivered). It stops with the workers.
    """

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        worker_db.set_thread_count(worker.worker_threads)
        queues = worker.consumer_whitelist
        if queues and QUEUE_CLEANUP not in queues:
            return
        interval = max(0.2, settings.get().cleanup_interval_seconds)
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="refapp-cleanup-schedule", daemon=True
        )
        self._thread.start()

    def _run(self, interval: float) -> None:
        # Poll several times per interval so the lease is retaken soon after it lapses.
        poll = min(max(interval / 4, 0.1), 15.0)
        client: redis.Redis = broker.client
        wait = random.uniform(0, poll)  # processes booting together do not poll in step
        while not self._stop.wait(wait):
            wait = poll
            try:
                if client.set(CLEANUP_LEASE_KEY, "1", nx=True, px=int(interval * 1000)):
                    cleanup.send()
            except redis.RedisError as exc:
                log.warning("cleanup schedule: broker unreachable (%s)", exc)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self._thread is not None:
            self._thread.join(timeout=2)
        worker_db.close()


broker.add_middleware(Niceness())
broker.add_middleware(JobStates())
broker.add_middleware(CleanupSchedule())
broker.add_middleware(outbox.RelayThread(enqueue))

__all__ = [
    "analyse_submission",
    "analyse_submission_high",
    "analyse_submission_low",
    "broker",
    "cleanup",
    "enqueue",
    "render_report",
]
