"""Fixtures for the queue tests: a fresh database with the app's schema, an isolated Redis
database per broker, and real `dramatiq refapp.tasks` worker processes.

Imported by test_queue.py (tests/reference_app/conftest.py belongs to the web tier)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from scalectl.stack.process import free_port
from scalectl.stack.servers import Server

APP_DIR = Path(__file__).resolve().parents[2] / "reference_app"

SCHEMA = APP_DIR / "refapp" / "schema.sql"
ALL_QUEUES = ("analyse-high", "analyse", "analyse-low", "render", "cleanup")

# Small enough that the tests see redelivery, retries and the sweep within seconds.
FAST_QUEUE_ENV = {
    "BROKER_HEARTBEAT_MS": "3000",
    "BROKER_MAINTENANCE_CHANCE": "250000",
    "JOB_MAX_RETRIES": "2",
    "JOB_MIN_BACKOFF_MS": "100",
    "JOB_MAX_BACKOFF_MS": "400",
    "CLEANUP_INTERVAL_SECONDS": "1",
    "CLEANUP_STUCK_QUEUED_SECONDS": "2",
    "ANALYSIS_WORK_FACTOR": "1000",
}


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.1) -> object:
    """The predicate's first truthy value within `timeout` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def fresh_database(server: Server, name: str) -> str:
    """Drop and recreate `name`, apply the app's (idempotent) schema, return its URL."""
    with psycopg.connect(server.url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    url = server.create_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
    return url


def fresh_redis(server: Server, db: int) -> str:
    """A flushed Redis database number of its own, so brokers of different tests never
    share queues (Dramatiq's keys carry no test-specific prefix)."""
    url = server.url.rsplit("/", 1)[0] + f"/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@dataclass
class Worker:
    """A `dramatiq refapp.tasks` command: its main process, worker processes and exporter
    share one process group, as in a container."""

    proc: subprocess.Popen[bytes]
    metrics_port: int
    log: Path

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=3
        ) as r:
            return str(r.read().decode())

    def ready(self) -> bool:
        # Dramatiq forks the exporter only after its worker processes have booted.
        with contextlib.suppress(OSError):
            self.metrics()
            return True
        return False

    def kill(self) -> None:
        """SIGKILL the whole group: no shutdown hooks, no requeue, no acks."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            # The main process only: it forwards SIGTERM to its children, and a worker
            # process that gets a second one (from a group-wide kill) exits without
            # shutting down cleanly.
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        # Whatever survived the main process (an orphaned child) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def start_worker(
    tmp: Path,
    database_url: str,
    broker_url: str,
    *,
    threads: int = 2,
    queues: tuple[str, ...] = ALL_QUEUES,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Worker:
    name = f"worker-{uuid.uuid4().hex[:6]}"
    prom_dir = tmp / f"{name}-prom"
    prom_dir.mkdir(parents=True)
    port = free_port()
    environ = {
        **os.environ,
        **FAST_QUEUE_ENV,
        "DATABASE_URL": database_url,
        "BROKER_URL": broker_url,
        "REDIS_URL": broker_url,
        # One exporter per dramatiq command: its own port and its own multiprocess dir.
        "dramatiq_prom_host": "127.0.0.1",
        "dramatiq_prom_port": str(port),
        "dramatiq_prom_db": str(prom_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
        **(env or {}),
    }
    environ.pop("DATABASE_PASSWORD_FILE", None)
    log = tmp / f"{name}.log"
    argv = [sys.executable, "-m", "dramatiq", "refapp.tasks", "--processes", "1"]
    argv += ["--threads", str(threads), "--worker-shutdown-timeout", "5000", "--queues", *queues]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=APP_DIR,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(proc, port, log)
    if not wait_until(lambda: worker.ready() or proc.poll() is not None, timeout) or (
        proc.poll() is not None
    ):
        worker.stop()
        pytest.fail(f"dramatiq worker did not start:\n{worker.log_tail()}")
    return worker


@contextlib.contextmanager
def global_broker(broker_url: str) -> Iterator[None]:
    """Point this process's enqueue() at `broker_url` for the duration."""
    import dramatiq
    from refapp import broker as broker_module
    from refapp import settings

    previous = dramatiq.get_broker()
    cfg = settings.Settings(broker_url=broker_url)
    dramatiq.set_broker(broker_module.build(cfg))
    try:
        yield
    finally:
        dramatiq.get_broker().client.close()
        dramatiq.set_broker(previous)


def add_job(
    conn: psycopg.Connection,
    *,
    title: str,
    content: str,
    priority: str = "default",
    enqueued_seconds_ago: float = 0,
    relayed: bool = True,
) -> tuple[str, str]:
    """Insert a submission and its analyse job as the web tier does; (submission, job).
    `relayed`: marked as sent by a relay, for a test that enqueues it itself; False leaves
    it in the outbox, for a relay to send."""
    submission_id, job_id = str(uuid.uuid4()), str(uuid.uuid4())
    conn.execute(
        "INSERT INTO submissions (id, user_id, title, content, priority)"
        " VALUES (%s, 1, %s, %s, %s)",
        (submission_id, title, content, priority),
    )
    conn.execute(
        """
        INSERT INTO jobs (id, submission_id, kind, enqueued_at, relayed_at)
        VALUES (%s, %s, 'analyse', now() - make_interval(secs => %s),
                CASE WHEN %s THEN now() - make_interval(secs => %s) END)
        """,
        (job_id, submission_id, enqueued_seconds_ago, relayed, enqueued_seconds_ago),
    )
    return submission_id, job_id


def job(conn: psycopg.Connection, job_id: str) -> dict[str, object]:
    row = conn.execute(
        "SELECT status, attempts, completions, error FROM jobs WHERE id = %s", (job_id,)
    ).fetchone()
    assert row is not None, f"no job {job_id}"
    return {"status": row[0], "attempts": row[1], "completions": row[2], "error": row[3]}


def render_job(conn: psycopg.Connection, submission_id: str) -> dict[str, object] | None:
    row = conn.execute(
        "SELECT id::text FROM jobs WHERE submission_id = %s AND kind = 'render'",
        (submission_id,),
    ).fetchone()
    return job(conn, row[0]) if row else None
