"""Load shedding as admission control, against a real worker: each tier's share of its
requests in flight, refusals that cost nothing downstream, and no shedding from event-loop
lag however far past its threshold."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scalectl.stack.servers import Server
from tests.reference_app.cluster import Cluster
from tests.reference_app.conftest import app_env, start_cluster

pytestmark = pytest.mark.stack

HELD_MS = 6000  # how long each held request sleeps: longer than the steps that need it


@pytest.fixture
def one_worker(postgres_server: Server, redis_server: Server, tmp_path: Path) -> Iterator[Cluster]:
    """One worker (every request lands on the same count) that refuses free-tier requests
    from 2 in flight, basic from 3 and premium from 4, and whose loop lag is always past
    SHED_MAX_LOOP_LAG_MS (which sheds every tier at once if lag counts)."""
    env = app_env(
        postgres_server,
        redis_server,
        WEB_CONCURRENCY="1",
        SHED_MAX_IN_FLIGHT="2",
        SHED_MAX_LOOP_LAG_MS="0.0001",
    )
    app = start_cluster(tmp_path, env)
    yield app
    app.stop()


async def _in_flight(client: httpx.AsyncClient, count: int) -> None:
    """Wait until the worker reports `count` requests in flight (/health/system)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = (await client.get("/health/system")).json()
        if body["checks"]["http:inFlight"][0]["observedValue"] == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never {count} requests in flight")


async def _lag_warns(client: httpx.AsyncClient) -> None:
    """Wait until /health/system says the loop lag is past its threshold."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lag = (await client.get("/health/system")).json()["checks"]["eventLoop:lag"][0]
        if lag["status"] == "warn":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the loop lag never warned: {lag}")


def test_premium_keeps_its_reserve_and_a_refusal_costs_nothing(one_worker: Cluster) -> None:
    cluster = one_worker
    held = cluster.auth()  # premium
    basic = cluster.auth(tier="basic")  # 3 a minute (app_env): counts what reaches the limiter
    free_key, free_user = cluster.mint(tier="free")
    free = {"Authorization": f"Bearer {free_key}"}
    premium = cluster.auth(tier="premium", user=12)

    async def run() -> dict[str, list[int]]:
        seen: dict[str, list[int]] = {"free": [], "basic": [], "premium": [], "health": []}
        async with httpx.AsyncClient(base_url=cluster.url, timeout=20) as client:

            async def hold() -> httpx.Response:
                return await client.get("/api/debug/sleep", params={"ms": HELD_MS}, headers=held)

            async def ask(tier: str, headers: dict[str, str]) -> httpx.Response:
                answer = await client.get("/api/stats", headers=headers)
                seen[tier].append(answer.status_code)
                return answer

            # The loop is "late" (warn, once sampled), yet nothing is in flight: every tier
            # is served.
            await _lag_warns(client)
            for tier, headers in (("free", free), ("basic", basic), ("premium", premium)):
                await ask(tier, headers)

            holding = [asyncio.create_task(hold()) for _ in range(2)]
            await _in_flight(client, 2)
            refused = await ask("free", free)
            assert refused.headers["retry-after"] == "1"
            assert refused.json() == {"detail": "overloaded, retry later"}
            write = await client.post(
                "/api/submissions", json={"title": "t", "content": "c"}, headers=free
            )
            seen["free"].append(write.status_code)
            await ask("basic", basic)
            await ask("premium", premium)

            holding.append(asyncio.create_task(hold()))
            await _in_flight(client, 3)
            await ask("basic", basic)
            await ask("premium", premium)

            holding.append(asyncio.create_task(hold()))
            await _in_flight(client, 4)
            await ask("premium", premium)
            for path in ("/health", "/health/ready", "/metrics"):
                seen["health"].append((await client.get(path)).status_code)

            assert [r.status_code for r in await asyncio.gather(*holding)] == [200] * 4
            # The limiter never saw the refused basic request: the third of its 3 a minute
            # is still there.
            after = await ask("basic", basic)
            assert after.headers["ratelimit-remaining"] == "0"
            return seen

    seen = asyncio.run(run())
    assert seen == {
        "free": [200, 503, 503],
        "basic": [200, 200, 503, 200],
        "premium": [200, 200, 200, 503],
        "health": [200, 200, 200],
    }
    # The refused write wrote nothing.
    with httpx.Client(base_url=cluster.url, headers=free, timeout=10) as client:
        listed = client.get(f"/api/users/{free_user}/submissions")
        assert listed.status_code == 200 and listed.json()["items"] == []
    assert cluster.metric("load_shed_requests_total", tier="free") == 2
    assert cluster.metric("load_shed_requests_total", tier="basic") == 1
    assert cluster.metric("load_shed_requests_total", tier="premium") == 1
