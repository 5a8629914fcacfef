"""The transactional outbox: the web tier commits job rows and never calls the broker; relays
in the queue workers send them (refapp.outbox). Real gunicorn, PostgreSQL, Redis, Dramatiq.

The web tier's broker is a closed port throughout, so every job that runs here was sent by
a relay."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from refapp import outbox, tasks

from scalectl.stack.process import free_port
from scalectl.stack.servers import Server
from tests.reference_app.cluster import Cluster
from tests.reference_app.conftest import app_env, start_cluster
from tests.reference_app.queue_fixtures import (
    APP_DIR,
    fresh_redis,
    global_broker,
    job,
    start_worker,
    wait_until,
)

pytestmark = pytest.mark.stack

PRIORITY_QUEUES = {"high": "analyse-high", "default": "analyse", "low": "analyse-low"}


@pytest.fixture(scope="module")
def app(
    postgres_server: Server, redis_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """The web tier, its broker a port nothing listens on."""
    env = app_env(postgres_server, redis_server, BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")
    cluster = start_cluster(tmp_path_factory.mktemp("outbox-app"), env)
    yield cluster
    cluster.stop()


def post(client: httpx.Client, title: str, priority: str = "default") -> str:
    """POST a submission; its job id."""
    response = client.post(
        "/api/submissions", json={"title": title, "content": "x y z", "priority": priority}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def unsent(db: str) -> int:
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM jobs WHERE relayed_at IS NULL").fetchone()
    return int(row[0]) if row else -1


def sent_messages(broker_url: str) -> list[tuple[str, str]]:
    """(queue, job id) of every message waiting in the broker."""
    client = redis.Redis.from_url(broker_url)
    try:
        return [
            (queue, json.loads(raw)["args"][0])
            for queue in PRIORITY_QUEUES.values()
            for raw in client.hvals(f"dramatiq:{queue}.msgs")
        ]
    finally:
        client.close()


def test_two_relays_send_each_job_of_concurrent_posts_exactly_once(
    app: Cluster, redis_server: Server
) -> None:
    db = app.env["DATABASE_URL"]
    broker_url = fresh_redis(redis_server, 14)  # no worker consumes: every message stays
    stop = threading.Event()
    with global_broker(broker_url):
        # One woken by notifications, one polling (as behind PgBouncer's transaction pooling).
        relays = [
            threading.Thread(
                target=outbox.Relay(db, tasks.enqueue, 0.3, listen=listen).run, args=(stop,)
            )
            for listen in (True, False)
        ]
        for relay in relays:
            relay.start()
        try:
            priorities = ["high", "default", "low"] * 20
            with app.client() as client, ThreadPoolExecutor(12) as pool:
                job_ids = list(pool.map(lambda p: post(client, f"concurrent {p}", p), priorities))
            assert wait_until(lambda: unsent(db) == 0, 15), unsent(db)
        finally:
            stop.set()
            for relay in relays:
                relay.join(5)
    assert not any(relay.is_alive() for relay in relays)
    sent = sent_messages(broker_url)
    times = Counter(job_id for _, job_id in sent)
    assert set(times) == set(job_ids) and set(times.values()) == {1}, times.most_common(3)
    queue_of = dict((job_id, queue) for queue, job_id in sent)
    assert all(queue_of[j] == PRIORITY_QUEUES[p] for j, p in zip(job_ids, priorities, strict=True))


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port that completes the TCP handshake (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


_RELAY = "import sys, threading; from refapp import outbox, tasks; " + (
    "outbox.Relay(sys.argv[1], tasks.enqueue, 30).run(threading.Event())"
)


def relay_state(db: str) -> list[str]:
    """The states of the relays' connections (pg_stat_activity)."""
    with psycopg.connect(db, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT state FROM pg_stat_activity WHERE application_name = 'refapp-outbox-relay'"
            " AND datname = current_database()"
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_a_posts_job_runs_without_the_web_tier_and_survives_a_relay_killed_holding_it(
    app: Cluster, redis_server: Server, tmp_path: Path
) -> None:
    db = app.env["DATABASE_URL"]
    broker_url = fresh_redis(redis_server, 14)
    with app.client() as client, psycopg.connect(db, autocommit=True) as conn:
        # A relay whose broker hangs: it locks the job's row, then waits on the broker.
        with silent_listener() as port:
            env = {**os.environ, "BROKER_URL": f"redis://127.0.0.1:{port}/0"}
            dying = subprocess.Popen(
                [sys.executable, "-c", _RELAY, db], cwd=APP_DIR, env=env, start_new_session=True
            )
            try:
                assert wait_until(lambda: relay_state(db) == ["idle"], 15), relay_state(db)
                held = post(client, "held by a relay that dies")
                assert wait_until(lambda: relay_state(db) == ["idle in transaction"], 5)
            finally:
                os.killpg(dying.pid, signal.SIGKILL)
                dying.wait(10)
        assert job(conn, held)["status"] == "queued"
        assert unsent(db) == 1  # never marked: it was not sent

        # The queue side, its relay polling only every 30 s: a job that runs within
        # seconds was sent on the commit's notification. No sweep: only relays send here.
        quiet = {"OUTBOX_POLL_SECONDS": "30", "CLEANUP_STUCK_QUEUED_SECONDS": "300"}
        worker = start_worker(tmp_path, db, broker_url, env=quiet)
        try:
            assert wait_until(lambda: job(conn, held)["status"] == "done", 20), worker.log_tail()
            posted = time.monotonic()
            fresh = post(client, "sent on its notification")
            assert wait_until(lambda: job(conn, fresh)["status"] == "done", 20), worker.log_tail()
            print(f"a POST's job done {time.monotonic() - posted:.2f}s after its answer")
            assert time.monotonic() - posted < 20
            for job_id in (held, fresh):
                assert job(conn, job_id) == {
                    "status": "done",
                    "attempts": 1,
                    "completions": 1,
                    "error": None,
                }
        finally:
            started_stop = time.monotonic()
            worker.stop()
        # SIGTERM stops the relay with the worker, within its wait (not the 30 s poll).
        assert worker.proc.returncode == 0, worker.log_tail()
        assert time.monotonic() - started_stop < 10
        assert "outbox relay stopped" in worker.log.read_text(), worker.log_tail()
    assert wait_until(lambda: relay_state(db) == [], 5), relay_state(db)
