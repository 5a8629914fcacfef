"""The HTTP contract of every endpoint, against a real 2-worker cluster."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scalectl.stack.servers import Server
from tests.reference_app.cluster import DEFAULT_USER, Cluster
from tests.reference_app.conftest import app_env, start_cluster

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def client(cluster: Cluster) -> httpx.Client:
    """The cluster's default key (premium, user DEFAULT_USER)."""
    return httpx.Client(base_url=cluster.url, headers=cluster.auth(), timeout=10)


@pytest.fixture
def fresh(cluster: Cluster) -> Iterator[tuple[httpx.Client, int]]:
    """A client with a key of a user of its own, and that user's id."""
    key, user = cluster.mint()
    with httpx.Client(
        base_url=cluster.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as client:
        yield client, user


def submit(client: httpx.Client, title: str = "CV", **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/api/submissions",
        json={"title": title, "content": "Python engineer, 10 years", **extra},
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def test_create_returns_202_with_job_location(client: httpx.Client) -> None:
    response = client.post(
        "/api/submissions",
        json={"user_id": DEFAULT_USER, "title": "CV", "content": "text", "priority": "high"},
    )
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "job_id", "status"}
    assert body["status"] == "queued"
    uuid.UUID(body["id"]), uuid.UUID(body["job_id"])
    assert response.headers["location"] == f"/api/jobs/{body['job_id']}"
    job = client.get(response.headers["location"])
    assert job.status_code == 200
    assert job.json()["submission_id"] == body["id"]
    assert job.json()["kind"] == "analyse"
    assert job.json()["status"] in {"queued", "running", "done"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"user_id": 0, "title": "t", "content": "c"},
        {"user_id": 2**63, "title": "t", "content": "c"},
        {"user_id": 1, "title": "", "content": "c"},
        {"user_id": 1, "title": "x" * 201, "content": "c"},
        {"user_id": 1, "title": "t", "content": "x" * 100_001},
        {"user_id": 1, "title": "t", "content": "c", "priority": "urgent"},
        {"user_id": 1, "title": "t\x00", "content": "c"},
        {"user_id": 1, "title": "t", "content": "c", "unknown": 1},
        {"user_id": "one", "title": "t", "content": "c"},
        {"user_id": None, "title": "t", "content": ""},
    ],
)
def test_create_rejects_bad_input_with_422(client: httpx.Client, body: dict[str, Any]) -> None:
    assert client.post("/api/submissions", json=body).status_code == 422


def test_create_with_null_user_id_is_the_keys_user(client: httpx.Client) -> None:
    # Found by schemathesis: a null user_id once reached the gt=0 check and answered 500.
    response = client.post("/api/submissions", json={"user_id": None, "title": "t", "content": "c"})
    assert response.status_code == 202, response.text
    body = client.get(f"/api/submissions/{response.json()['id']}").json()
    assert body["user_id"] == DEFAULT_USER


def test_create_rejects_malformed_json_with_422(client: httpx.Client) -> None:
    response = client.post(
        "/api/submissions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_get_submission(fresh: tuple[httpx.Client, int]) -> None:
    client, user = fresh
    created = submit(client, title="Resume", priority="low")
    body = client.get(f"/api/submissions/{created['id']}").json()
    assert body["id"] == created["id"]
    assert body["user_id"] == user
    assert body["title"] == "Resume"
    assert body["priority"] == "low"
    assert body["status"] == "pending" or body["status"] in {"analysed", "rendered", "failed"}
    assert body["version"] == 1
    assert body["content"] == "Python engineer, 10 years"


def test_get_missing_or_malformed_id(client: httpx.Client) -> None:
    assert client.get(f"/api/submissions/{uuid.uuid4()}").status_code == 404
    assert client.get("/api/submissions/not-a-uuid").status_code == 422
    assert client.get(f"/api/jobs/{uuid.uuid4()}").status_code == 404
    assert client.get("/api/jobs/42").status_code == 422
    assert client.get("/api/nothing-here").status_code == 404


def test_user_submissions_keyset_pagination(fresh: tuple[httpx.Client, int]) -> None:
    client, user = fresh
    assert client.get(f"/api/users/{user}/submissions").json() == {
        "items": [],
        "next_cursor": None,
    }
    ids = [submit(client, title=f"doc {i}")["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(5):  # 3 pages expected; bounded
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/api/users/{user}/submissions", params=params)
        assert page.status_code == 200
        body = page.json()
        assert len(body["items"]) <= 2
        assert all("content" not in item for item in body["items"])
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first, each once


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"cursor": "garbage"}, 400),
        ({"cursor": "WyJub3QgYSB0aW1lIiwgIngiXQ"}, 400),  # valid base64, wrong content
        ({"limit": 0}, 422),
        ({"limit": 101}, 422),
        ({"limit": "many"}, 422),
    ],
)
def test_user_submissions_bad_query(
    client: httpx.Client, params: dict[str, Any], status: int
) -> None:
    path = f"/api/users/{DEFAULT_USER}/submissions"
    assert client.get(path, params=params).status_code == status


def test_user_submissions_bad_user_id(client: httpx.Client) -> None:
    assert client.get("/api/users/0/submissions").status_code == 422
    assert client.get(f"/api/users/{2**63}/submissions").status_code == 422


def test_patch_bumps_version(client: httpx.Client) -> None:
    created = submit(client)
    before = client.get(f"/api/submissions/{created['id']}").json()
    response = client.patch(f"/api/submissions/{created['id']}", json={"content": "new text"})
    assert response.status_code == 200
    after = response.json()
    assert after["version"] == before["version"] + 1
    assert after["content"] == "new text"
    assert after["title"] == before["title"]
    assert after["updated_at"] > before["updated_at"]


@pytest.mark.parametrize("body", [{}, {"title": ""}, {"title": None, "content": None}, {"x": 1}])
def test_patch_rejects_bad_input(client: httpx.Client, body: dict[str, Any]) -> None:
    created = submit(client)
    assert client.patch(f"/api/submissions/{created['id']}", json=body).status_code == 422


def test_patch_missing_is_404(client: httpx.Client) -> None:
    response = client.patch(f"/api/submissions/{uuid.uuid4()}", json={"title": "x"})
    assert response.status_code == 404


def test_delete_is_soft_and_hides_everywhere(fresh: tuple[httpx.Client, int]) -> None:
    client, user = fresh
    keep, gone = submit(client, title="keep"), submit(client, title="gone")
    assert len(client.get(f"/api/users/{user}/submissions").json()["items"]) == 2
    client.get(f"/api/submissions/{gone['id']}")  # cached before the delete
    response = client.delete(f"/api/submissions/{gone['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"/api/submissions/{gone['id']}").status_code == 404
    assert client.delete(f"/api/submissions/{gone['id']}").status_code == 404
    assert client.patch(f"/api/submissions/{gone['id']}", json={"title": "x"}).status_code == 404
    items = client.get(f"/api/users/{user}/submissions").json()["items"]
    assert [i["id"] for i in items] == [keep["id"]]


def test_stats_counts_writes(client: httpx.Client) -> None:
    before = client.get("/api/stats").json()
    assert set(before) == {"submissions", "jobs", "total"}
    submit(client)
    after = client.get("/api/stats").json()  # invalidated by the write
    assert after["total"] == before["total"] + 1
    assert sum(after["jobs"].values()) == sum(before["jobs"].values()) + 1


def test_request_id_is_echoed_or_minted(client: httpx.Client, cluster: Cluster) -> None:
    assert (
        client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    # Minted: 32 hex digits, never the same twice, across both workers (each reseeds its
    # generator after the fork). A connection each, so both workers answer.
    answers: list[httpx.Headers] = []
    while len(answers) < 200 and (
        len(answers) < 40 or len({a["x-served-by"] for a in answers}) < 2
    ):
        answers.append(httpx.get(cluster.url + "/health").headers)
    minted = [a["x-request-id"] for a in answers]
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in minted)
    assert len(set(minted)) == len(minted)
    assert len({a["x-served-by"] for a in answers}) == 2


def test_access_log_samples_successes_and_keeps_errors(
    postgres_server: Server, redis_server: Server, tmp_path: Path
) -> None:
    # One worker, so its count of fast successes is the whole cluster's.
    env = app_env(
        postgres_server, redis_server, WEB_CONCURRENCY="1",
        ACCESS_LOG_EVERY="5", ACCESS_LOG_SLOW_MS="150", LOG_LEVEL="info",
    )  # fmt: skip
    app = start_cluster(tmp_path, env)
    try:
        with httpx.Client(base_url=app.url, headers=app.auth(), timeout=10) as client:
            for n in range(20):
                ok = client.get("/api/stats", headers={"X-Request-ID": f"ok-{n}"})
                assert ok.status_code == 200
            for n in range(3):
                missing = client.get(
                    f"/api/submissions/{uuid.uuid4()}", headers={"X-Request-ID": f"nf-{n}"}
                )
                assert missing.status_code == 404
            slow = client.get(
                "/api/debug/sleep", params={"ms": 300}, headers={"X-Request-ID": "slow-0"}
            )
            assert slow.status_code == 200
    finally:
        app.stop()
    entries = [json.loads(line) for line in app.log.read_text().splitlines() if line[:1] == "{"]
    logged = [e["request_id"] for e in entries if e.get("logger") == "refapp.access"]
    assert sum(rid.startswith("ok-") for rid in logged) == 4  # one in five of 20
    assert [rid for rid in logged if not rid.startswith("ok-")] == [
        "nf-0", "nf-1", "nf-2", "slow-0",
    ]  # fmt: skip


def test_openapi_declares_errors(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    post = paths["/api/submissions"]["post"]["responses"]
    assert {"202", "422", "429", "503"} <= set(post)
    assert "404" in paths["/api/submissions/{submission_id}"]["get"]["responses"]
    assert "400" in paths["/api/users/{user_id}/submissions"]["get"]["responses"]
    assert "401" in post
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "503" in paths["/health/ready"]["get"]["responses"]
    assert "/api/debug/sleep" not in paths


def test_http_metrics_use_route_templates(client: httpx.Client, cluster: Cluster) -> None:
    client.get(f"/api/submissions/{uuid.uuid4()}")
    client.get("/no/such/path")
    names = {(name, dict(labels).get("route")) for name, labels in cluster.metrics()}
    assert ("http_requests_total", "/api/submissions/{submission_id}") in names
    assert ("http_requests_total", "unmatched") in names
    assert not any(route and route.startswith("/api/submissions/0") for _, route in names)
    buckets = {
        dict(labels)["le"]
        for name, labels in cluster.metrics()
        if name == "http_request_duration_seconds_bucket"
    }
    assert {"0.3", "0.8", "1.2", "10.0", "+Inf"} <= buckets


def test_metrics_exports_every_family(cluster: Cluster) -> None:
    names = {name for name, _ in cluster.metrics()}
    for expected in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "db_queries_total",
        "cache_requests_total",
        "db_pool_connections",
        "db_pool_size",
        "db_pool_requests_waiting",
        "circuit_breaker_state",
        "queue_depth",
        "queue_oldest_job_age_seconds",
        "queue_dead_letters",
    ]:
        assert expected in names, expected
