"""Rate limiting (429 past the tier's limit) and load shedding (503, cheapest tier first)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scalectl.stack.servers import Server
from tests.reference_app.cluster import Cluster
from tests.reference_app.conftest import app_env, start_cluster

pytestmark = pytest.mark.stack


def test_rate_limit_headers_on_every_limited_response(cluster: Cluster) -> None:
    response = httpx.get(cluster.url + "/api/stats", headers=cluster.auth(), timeout=5)
    assert response.status_code == 200
    assert int(response.headers["ratelimit-limit"]) > 0
    assert int(response.headers["ratelimit-remaining"]) >= 0
    assert int(response.headers["ratelimit-reset"]) >= 0
    assert "ratelimit-limit" not in httpx.get(cluster.url + "/health", timeout=5).headers


def test_basic_tier_gets_429_past_its_limit(cluster: Cluster) -> None:
    # The cluster's basic tier allows 3 a minute per API key. The key is basic whatever
    # tier header the client sends (the premium limit is far above 4).
    headers = {**cluster.auth(tier="basic"), "X-API-Tier": "premium"}
    with httpx.Client(base_url=cluster.url, headers=headers, timeout=5) as client:
        answers = [client.get("/api/stats") for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["ratelimit-remaining"] for r in answers[:3]] == ["2", "1", "0"]
        refused = answers[3]
        assert refused.headers["ratelimit-limit"] == "3"
        assert refused.headers["ratelimit-remaining"] == "0"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert int(refused.headers["ratelimit-reset"]) <= 60
        assert refused.json() == {"detail": "rate limit exceeded"}
        # Health and metrics are exempt; another key of the same tier has its own budget.
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200
        other = client.get("/api/stats", headers=cluster.auth(tier="basic"))
        assert other.status_code == 200
        # A made-up key is no fresh bucket: alone it is refused, and beside the real key
        # (Authorization wins) it changes nothing.
        bogus = {"X-API-Key": f"rk_{uuid.uuid4().hex}"}
        assert client.get("/api/stats", headers=bogus).status_code == 429
        alone = httpx.get(cluster.url + "/api/stats", headers=bogus, timeout=5)
        assert alone.status_code == 401
    assert cluster.metric("rate_limited_requests_total", limit="basic") >= 1


@pytest.fixture
def small_cluster(
    postgres_server: Server, redis_server: Server, tmp_path: Path
) -> Iterator[Cluster]:
    """Sheds free-tier requests at 4 in flight per worker, premium only at 8."""
    app = start_cluster(tmp_path, app_env(postgres_server, redis_server, SHED_MAX_IN_FLIGHT="4"))
    yield app
    app.stop()


def test_free_tier_is_shed_first_under_load(small_cluster: Cluster) -> None:
    cluster = small_cluster

    # The free key claims premium in a header: it must still be shed first.
    free = {**cluster.auth(tier="free"), "X-API-Tier": "premium"}
    premium_key = cluster.auth(tier="premium")

    async def run() -> tuple[list[httpx.Response], httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(base_url=cluster.url, timeout=10) as client:
            slow = [
                asyncio.create_task(
                    client.get("/api/debug/sleep", params={"ms": 1500}, headers=free)
                )
                for _ in range(16)
            ]
            await asyncio.sleep(0.5)  # the admitted ones are now in flight
            premium = await client.get("/api/stats", headers=premium_key)
            health = await client.get("/health/ready")
            return list(await asyncio.gather(*slow)), premium, health

    slow, premium, health = asyncio.run(run())
    statuses = [r.status_code for r in slow]
    assert set(statuses) <= {200, 503}
    assert 1 <= statuses.count(200) <= 8  # at most 4 per worker admitted
    shed = [r for r in slow if r.status_code == 503]
    assert shed, statuses
    assert all(r.headers["retry-after"] == "1" for r in shed)
    assert premium.status_code == 200
    assert health.status_code == 200
    assert cluster.metric("load_shed_requests_total", tier="free") >= len(shed)
    assert cluster.metric("load_shed_requests_total", tier="premium") == 0
