"""The transactional outbox's relay: sends committed job rows to the broker.

The web tier only commits a submission and its job row (refapp.store), in one statement; it
never talks to the broker. A row with `relayed_at` NULL is in the outbox, and a trigger
(schema.sql) notifies channel `refapp_outbox` when one commits. Each Dramatiq worker process
runs one relay thread (`RelayThread`), which

  1. LISTENs on its own connection, so a job is sent within milliseconds of its commit
     (unless OUTBOX_LISTEN is off: PgBouncer's transaction pooling has no LISTEN);
  2. in one transaction, locks a batch of outbox rows (FOR UPDATE SKIP LOCKED: relays
     running side by side never take the same row), sends each to its queue, marks the
     sent ones `relayed_at = now()`, and commits;
  3. waits for the next notification, at most `OUTBOX_POLL_SECONDS`: the poll finds rows
     whose notification it missed (it was reconnecting, another relay died holding them).

At least once: a relay that dies after locking rows and before its commit leaves them
unmarked, and its locks go with its connection, so the next relay to look sends them again
(a job sent twice costs a duplicate delivery, which the handlers absorb). A job is never
marked before it was sent (the sweep in refapp.tasks marks what it re-sends first, and
covers messages the broker lost). Every wait is bounded and the thread stops with its
worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import dramatiq
import psycopg
from dramatiq.middleware import Middleware

from refapp import settings

log = logging.getLogger(__name__)

CHANNEL = "refapp_outbox"
BATCH = 100  # rows per transaction: their locks are held while they are sent
MAX_BACKOFF_SECONDS = 5.0
STOP_CHECK_SECONDS = 0.5  # how often a waiting relay looks at its stop event
# A relay stuck in its transaction (a hung broker) must not hold its rows' locks for long.
_IDLE_IN_TRANSACTION_MS = 30_000

Send = Callable[[str, str, str, str], None]  # job id, submission id, kind, priority

_CLAIM = """
    SELECT j.id::text, j.submission_id::text, j.kind, s.priority
      FROM jobs AS j JOIN submissions AS s ON s.id = j.submission_id
     WHERE j.relayed_at IS NULL AND j.kind IN ('analyse', 'render')
     ORDER BY j.enqueued_at
     LIMIT %s
       FOR UPDATE OF j SKIP LOCKED
"""
_MARK = "UPDATE jobs SET relayed_at = now() WHERE id = ANY(%s::uuid[])"


class Relay:
    """Sends outbox rows of the database at `database_url` with `send`; without `listen`,
    only every `poll_seconds`."""

    def __init__(
        self,
        database_url: str,
        send: Send,
        poll_seconds: float,
        batch: int = BATCH,
        listen: bool = True,
    ) -> None:
        self.database_url = database_url
        self.send = send
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.listen = listen

    def connect(self) -> psycopg.Connection:
        """A connection, listening on the outbox channel with `listen`. Raises
        psycopg.Error."""
        cfg = settings.get()
        conn = psycopg.connect(
            self.database_url,
            autocommit=True,
            connect_timeout=max(1, round(cfg.database_pool_timeout)),
            application_name="refapp-outbox-relay",
            options=(
                f"-c statement_timeout={cfg.database_statement_timeout_ms}"
                f" -c idle_in_transaction_session_timeout={_IDLE_IN_TRANSACTION_MS}"
            ),
        )
        try:
            if self.listen:
                conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            conn.close()
            raise
        return conn

    def relay_batch(self, conn: psycopg.Connection) -> int:
        """Send one batch of outbox rows; how many rows it locked. Raises psycopg.Error, or
        the first send's error once the rows sent before it are marked."""
        failure: Exception | None = None
        sent: list[str] = []
        with conn.transaction():
            rows = conn.execute(_CLAIM, (self.batch,)).fetchall()
            for job_id, submission_id, kind, priority in rows:
                try:
                    self.send(job_id, submission_id, kind, priority)
                except Exception as exc:  # the broker: mark what went, retry the rest later
                    failure = exc
                    break
                sent.append(job_id)
            if sent:
                conn.execute(_MARK, (sent,))
        if failure is not None:
            raise failure
        return len(rows)

    def drain(self, conn: psycopg.Connection, stop: threading.Event) -> int:
        """Send batches until the outbox holds nothing this relay can lock; rows sent."""
        total = 0
        while not stop.is_set():
            claimed = self.relay_batch(conn)
            total += claimed
            if claimed < self.batch:
                break
        return total

    def wait(self, conn: psycopg.Connection, stop: threading.Event) -> None:
        """Until a notification arrives (or arrived while this relay was busy) or `stop`
        is set, at most `poll_seconds`."""
        if not self.listen:
            stop.wait(self.poll_seconds)
            return
        deadline = time.monotonic() + self.poll_seconds
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            for _ in conn.notifies(timeout=min(remaining, STOP_CHECK_SECONDS), stop_after=1):
                return

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set, reconnecting with backoff after any failure."""
        backoff = 0.2
        while not stop.is_set():
            try:
                with self.connect() as conn:
                    while not stop.is_set():
                        self.drain(conn, stop)
                        backoff = 0.2
                        self.wait(conn, stop)
            except Exception as exc:  # the database or the broker: both come back
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        log.info("outbox relay stopped")


class RelayThread(Middleware):
    """Runs a `Relay` in every worker process, from boot until the worker shuts down."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        cfg = settings.get()
        if not cfg.database_url:
            log.warning("outbox relay off: DATABASE_URL is not set")
            return
        relay = Relay(
            cfg.database_url, self.send, cfg.outbox_poll_seconds, listen=cfg.outbox_listen
        )
        self._thread = threading.Thread(
            target=relay.run, args=(self._stop,), name="refapp-outbox-relay", daemon=True
        )
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            # A wait notices the stop within STOP_CHECK_SECONDS; a batch's sends end within
            # the broker's socket timeout.
            self._thread.join(timeout=STOP_CHECK_SECONDS + 2)
