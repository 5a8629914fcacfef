"""Fixtures: gunicorn clusters of the reference app against real PostgreSQL and Redis."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scalectl.stack.servers import Server
from tests.reference_app.cluster import Cluster

# Each cluster gets its own Redis database: cache keys (stats) and rate-limit counters of
# one must not leak into another sharing the session's server.
_redis_db = itertools.count(1)


def app_env(postgres: Server, redis: Server, **overrides: str) -> dict[str, str]:
    """Settings for a test cluster: 2 workers, a read replica, debug endpoints, limits no test
    reaches except
    the basic tier's (3 a minute, for the 429 test)."""
    db = postgres.create_database(f"refapp_{uuid.uuid4().hex[:12]}")
    env = {
        "DATABASE_URL": db,
        # The same database again as a "replica": reads are routed to it (and counted as
        # target="replica") without running replication in the tests.
        "DATABASE_REPLICA_URLS": db,
        "REDIS_URL": redis.url.rsplit("/", 1)[0] + f"/{next(_redis_db) % 16}",
        "WEB_CONCURRENCY": "2",
        "REFAPP_DEBUG": "1",
        "LOG_LEVEL": "warning",
        "RATE_LIMIT_PER_IP": "100000/second",
        "RATE_LIMIT_TIER_FREE": "100000/second",
        "RATE_LIMIT_TIER_PREMIUM": "100000/second",
        "RATE_LIMIT_TIER_BASIC": "3/minute",
        "GRACEFUL_TIMEOUT": "10",
        "BREAKER_RESET_SECONDS": "1",
        # Long enough that only the cross-worker invalidation, not expiry, can make a write
        # visible through another worker's L1 within a test.
        "CACHE_L1_TTL": "30",
    }
    return {**env, **overrides}


def start_cluster(tmp: Path, env: dict[str, str]) -> Cluster:
    return Cluster(env=env, log=tmp / "gunicorn.log").start()


@pytest.fixture(scope="module")
def cluster(
    postgres_server: Server, redis_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One 2-worker cluster for the module, on a free loopback port."""
    app = start_cluster(tmp_path_factory.mktemp("app"), app_env(postgres_server, redis_server))
    yield app
    app.stop()
    assert not any(p.is_running() and p.status() != "zombie" for p in app.members), app.tail()
