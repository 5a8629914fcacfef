"""Cache-aside behaviour seen from outside: cached reads send no SQL, writes invalidate the
cache of every worker."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from tests.reference_app.cluster import Cluster

pytestmark = pytest.mark.stack


def served_by_each_worker(
    cluster: Cluster, path: str, attempts: int = 200, headers: dict[str, str] | None = None
) -> dict[str, dict]:
    """GET `path` on fresh connections until both workers have answered (bounded): the
    kernel hands each new connection to whichever worker accepts first."""
    seen: dict[str, dict] = {}
    for _ in range(attempts):
        response = httpx.get(cluster.url + path, headers=headers or cluster.auth(), timeout=5)
        assert response.status_code == 200
        seen.setdefault(response.headers["x-served-by"], response.json())
        if len(seen) == 2:
            break
    return seen


def test_cached_read_sends_no_sql(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.url, headers=cluster.auth(), timeout=5) as client:
        created = client.post("/api/submissions", json={"title": "cached", "content": "x"}).json()
        path = f"/api/submissions/{created['id']}"
        assert client.get(path).status_code == 200  # miss: loads and fills both layers
        # Both workers resolve the API key once (one lookup per key per worker per
        # API_KEY_CACHE_TTL); after that a cached read sends nothing.
        assert len(served_by_each_worker(cluster, path)) == 2
        before = cluster.metrics()
        for _ in range(5):
            assert client.get(path).json()["title"] == "cached"
        after = cluster.metrics()

    def total(samples: dict, name: str, **labels: str) -> float:
        return sum(
            v for (n, lbls), v in samples.items() if n == name and set(labels.items()) <= set(lbls)
        )

    assert total(after, "db_queries_total") == total(before, "db_queries_total")
    hits = total(after, "cache_requests_total", result="hit") - total(
        before, "cache_requests_total", result="hit"
    )
    assert hits >= 5


def test_a_post_sends_one_statement(cluster: Cluster) -> None:
    """Issue 13: the write's one INSERT, in autocommit (no BEGIN/COMMIT), on a connection the
    pool hands out without a check because it was used a moment ago."""
    with httpx.Client(base_url=cluster.url, headers=cluster.auth(), timeout=5) as client:
        # One kept-alive connection, so one worker. The pool hands its connections out in
        # turn: DATABASE_POOL_MAX (10) posts leave every one of them just used, and the key
        # resolved on that worker.
        for i in range(10):
            warm = client.post("/api/submissions", json={"title": f"warm {i}", "content": "x"})
            assert warm.status_code == 202
        before = cluster.metrics()
        for i in range(5):
            answer = client.post("/api/submissions", json={"title": f"one {i}", "content": "x"})
            assert answer.status_code == 202
        after = cluster.metrics()

    def queries(samples: dict, target: str) -> float:
        return samples.get(("db_queries_total", (("target", target),)), 0.0)

    assert queries(after, "primary") - queries(before, "primary") == 5
    assert queries(after, "replica") == queries(before, "replica")


def test_patch_is_visible_at_once_through_every_worker(cluster: Cluster) -> None:
    created = httpx.post(
        cluster.url + "/api/submissions",
        headers=cluster.auth(),
        json={"title": "old title", "content": "x"},
        timeout=5,
    ).json()
    path = f"/api/submissions/{created['id']}"
    warmed = served_by_each_worker(cluster, path)
    assert len(warmed) == 2, "both workers should have answered within the attempts"
    assert {body["title"] for body in warmed.values()} == {"old title"}

    response = httpx.patch(
        cluster.url + path, json={"title": "new title"}, headers=cluster.auth(), timeout=5
    )
    assert response.status_code == 200

    after = served_by_each_worker(cluster, path)
    assert len(after) == 2
    assert {body["title"] for body in after.values()} == {"new title"}
    assert {body["version"] for body in after.values()} == {2}


def test_list_cache_is_invalidated_by_a_new_submission(cluster: Cluster) -> None:
    key, user = cluster.mint()
    headers = {"Authorization": f"Bearer {key}"}
    path = f"/api/users/{user}/submissions"
    assert served_by_each_worker(cluster, path, headers=headers)  # cache the empty page
    httpx.post(
        cluster.url + "/api/submissions",
        json={"title": "first", "content": "x"},
        headers=headers,
        timeout=5,
    )
    pages = served_by_each_worker(cluster, path, headers=headers)
    assert Counter(len(p["items"]) for p in pages.values()) == Counter({1: len(pages)})


def test_reads_go_to_the_replica_and_writes_to_the_primary(cluster: Cluster) -> None:
    before = cluster.metrics()
    created = httpx.post(
        cluster.url + "/api/submissions",
        headers=cluster.auth(),
        json={"title": "routed", "content": "x"},
        timeout=5,
    ).json()
    middle = cluster.metrics()
    read = httpx.get(
        f"{cluster.url}/api/submissions/{created['id']}", headers=cluster.auth(), timeout=5
    )
    assert read.status_code == 200
    after = cluster.metrics()

    def queries(samples: dict, target: str) -> float:
        return samples.get(("db_queries_total", (("target", target),)), 0.0)

    assert queries(middle, "primary") > queries(before, "primary")
    assert queries(middle, "replica") == queries(before, "replica")
    assert queries(after, "replica") > queries(middle, "replica")
    assert queries(after, "primary") == queries(middle, "primary")


def test_concurrent_misses_load_once(cluster: Cluster) -> None:
    """The stampede guard: 20 simultaneous reads of an uncached key, one database read
    (two at most: the lock holder's, and a waiter's whose wait ran out)."""
    created = httpx.post(
        cluster.url + "/api/submissions",
        headers=cluster.auth(),
        json={"title": "hot", "content": "x"},
        timeout=5,
    ).json()
    path = f"/api/submissions/{created['id']}"
    before = cluster.metric("db_queries_total", target="replica")

    async def burst() -> list[int]:
        async with httpx.AsyncClient(
            base_url=cluster.url, headers=cluster.auth(), timeout=5
        ) as client:
            responses = await asyncio.gather(*(client.get(path) for _ in range(20)))
        return [r.status_code for r in responses]

    assert asyncio.run(burst()) == [200] * 20
    loads = cluster.metric("db_queries_total", target="replica") - before
    # Each load: one SELECT, plus the pool's check if the connection had idled.
    assert 1 <= loads <= 4, loads


def test_no_cache_request_reads_from_postgresql(cluster: Cluster) -> None:
    """`Cache-Control: no-cache` asks for the origin: the read issues SQL every time."""
    with httpx.Client(base_url=cluster.url, headers=cluster.auth(), timeout=5) as client:
        created = client.post("/api/submissions", json={"title": "origin", "content": "x"}).json()
        path = f"/api/submissions/{created['id']}"
        assert client.get(path).status_code == 200  # now cached
        before = cluster.metric("db_queries_total")
        for _ in range(3):
            response = client.get(path, headers={"Cache-Control": "no-cache"})
            assert response.json()["title"] == "origin"
        assert cluster.metric("db_queries_total") - before >= 3
