"""Degradation and recovery with the dependencies really stopped: Redis frozen (SIGSTOP,
the harder case: connections hang instead of failing) and PostgreSQL shut down."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scalectl.stack.servers import Server, start_postgres, start_redis
from tests.conftest import reachable_dir
from tests.reference_app.cluster import Cluster
from tests.reference_app.conftest import app_env, start_cluster

pytestmark = pytest.mark.stack


@dataclass
class Stack:
    postgres: Server
    redis: Server
    app: Cluster
    pg_dir: Path


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not {what} within {timeout}s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A cluster on PostgreSQL and Redis of its own, which these tests stop and restart."""
    with reachable_dir("outage") as tmp:
        yield from _stack(tmp)


def _stack(tmp: Path) -> Iterator[Stack]:
    postgres = start_postgres(tmp / "pg" / "data")
    redis = start_redis(tmp / "redis" / "data")
    state = Stack(postgres, redis, Cluster(env={}, log=tmp / "unused.log"), tmp / "pg" / "data")
    try:
        state.app = start_cluster(tmp, app_env(postgres, redis))
        yield state
    finally:
        state.app.stop()
        with_redis = state.redis.process()
        if with_redis is not None:
            os.kill(with_redis.pid, signal.SIGCONT)
        state.redis.stop()
        state.postgres.stop()


def create(app: Cluster, title: str) -> str:
    response = httpx.post(
        app.url + "/api/submissions",
        headers=app.auth(),
        json={"title": title, "content": "x"},
        timeout=5,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_redis_frozen_reads_fall_back_to_postgres_then_recover(stack: Stack) -> None:
    app = stack.app
    never_cached = create(app, "read only during the outage")
    os.kill(stack.redis.pid, signal.SIGSTOP)
    try:
        for _ in range(5):  # the first few pay a socket timeout until the breaker opens
            response = httpx.get(
                f"{app.url}/api/submissions/{never_cached}", headers=app.auth(), timeout=5
            )
            assert response.status_code == 200
            assert response.json()["title"] == "read only during the outage"
        assert (
            httpx.post(
                app.url + "/api/submissions",
                headers=app.auth(),
                json={"title": "written without redis", "content": "x"},
                timeout=5,
            ).status_code
            == 202
        )
        redis_health = httpx.get(app.url + "/health/redis", timeout=5)
        assert redis_health.status_code == 503
        assert redis_health.json()["status"] == "fail"
        ready = httpx.get(app.url + "/health/ready", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["status"] == "warn"
        # Open (1), or half-open (2) while a recovery probe waits on the frozen server.
        assert app.metric("circuit_breaker_state", dependency="redis") in {1, 2}
    finally:
        os.kill(stack.redis.pid, signal.SIGCONT)

    wait_until(
        lambda: httpx.get(app.url + "/health/redis", timeout=5).json()["status"] == "pass",
        timeout=15,
        what="redis healthy again",
    )
    wait_until(
        lambda: app.metric("circuit_breaker_state", dependency="redis") == 0,
        timeout=10,
        what="every worker's redis breaker closed",
    )
    path = f"{app.url}/api/submissions/{never_cached}"
    assert (
        httpx.patch(path, json={"title": "after"}, headers=app.auth(), timeout=5).status_code == 200
    )
    assert httpx.get(path, headers=app.auth(), timeout=5).json()["title"] == "after"


def test_postgres_down_serves_cached_reads_and_fails_writes_fast(stack: Stack) -> None:
    app = stack.app
    wait_until(
        lambda: app.metric("circuit_breaker_state", dependency="redis") == 0,
        timeout=10,
        what="redis usable (the cache is what serves reads during this outage)",
    )
    cached = create(app, "cached before the outage")
    path = f"{app.url}/api/submissions/{cached}"
    assert (
        httpx.get(path, headers=app.auth(), timeout=5).status_code == 200
    )  # now in Redis (and one L1)
    stack.postgres.stop()
    try:
        for _ in range(4):
            assert httpx.get(path, headers=app.auth(), timeout=5).status_code == 200
        for i in range(5):
            # The contract: a write fails fast, never hangs. 1 s is the client's timeout;
            # a hanging request raises instead of answering.
            response = httpx.post(
                app.url + "/api/submissions",
                headers=app.auth(),
                json={"title": f"during outage {i}", "content": "x"},
                timeout=1.0,
            )
            assert response.status_code == 503, response.text
            assert int(response.headers["retry-after"]) >= 1
        # Degraded, not unready: cached reads still work, so stay in rotation.
        ready = httpx.get(app.url + "/health/ready", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["status"] == "warn"
        database = httpx.get(app.url + "/health/database", timeout=5)
        assert database.status_code == 503
        assert database.json()["status"] == "fail"
        # Generic words only: no host, port or database user for anyone to read.
        for answer in (database, ready):
            assert str(stack.postgres.port) not in answer.text
            assert "127.0.0.1" not in answer.text
            outputs = [
                str(entry.get("output"))
                for entries in answer.json()["checks"].values()
                for entry in entries
            ]
            assert not any("postgres" in text or "connect" in text for text in outputs), outputs
        assert database.json()["checks"]["postgresql:responseTime"][0]["output"] in {
            "unreachable",
            "timed out",
        }
    finally:
        stack.postgres = start_postgres(
            stack.pg_dir, port=stack.postgres.port, password=stack.postgres.password
        )

    def writes_again() -> bool:
        response = httpx.post(
            app.url + "/api/submissions",
            headers=app.auth(),
            json={"title": "after the outage", "content": "x"},
            timeout=5,
        )
        return response.status_code == 202

    wait_until(writes_again, timeout=20, what="writes accepted again")
    wait_until(
        lambda: httpx.get(app.url + "/health/ready", timeout=5).status_code == 200,
        timeout=10,
        what="ready again",
    )
