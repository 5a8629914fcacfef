"""Access control: API keys (minted, hashed, resolved), 401 without one, and every read and
write scoped to the key's user (another user's ids answer 404, like missing ones)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from refapp import keys

from scalectl.stack.servers import Server
from tests.reference_app.cluster import APP_DIR, Cluster
from tests.reference_app.conftest import app_env, start_cluster

pytestmark = pytest.mark.stack


def client_of(cluster: Cluster, key: str) -> httpx.Client:
    return httpx.Client(base_url=cluster.url, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def two_users(cluster: Cluster) -> Iterator[tuple[httpx.Client, int, httpx.Client]]:
    """The owner's client and user id, and another user's client."""
    owner_key, owner = cluster.mint()
    other_key, _ = cluster.mint()
    with client_of(cluster, owner_key) as mine, client_of(cluster, other_key) as theirs:
        yield mine, owner, theirs


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer rk_" + "A" * 43},  # well-formed, unknown
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "scalectl-load-0123456789abcdef"},  # the old made-up keys
        {"X-API-Tier": "premium"},
    ],
)
def test_api_without_a_valid_key_is_401(cluster: Cluster, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/api/stats"),
        ("GET", f"/api/submissions/{uuid.uuid4()}"),
        ("POST", "/api/submissions"),
        ("GET", "/api/debug/sleep"),
    ]:
        response = httpx.request(method, cluster.url + path, headers=headers, timeout=5)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json() == {"detail": "missing or invalid API key"}
        assert response.headers["www-authenticate"] == "Bearer"
    # Outside /api no key is needed.
    assert httpx.get(cluster.url + "/health", timeout=5).status_code == 200


def test_bearer_and_x_api_key_both_work(cluster: Cluster) -> None:
    key, _ = cluster.mint()
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        assert httpx.get(cluster.url + "/api/stats", headers=headers, timeout=5).status_code == 200


def test_revoked_key_is_refused_after_the_cache_ttl(
    postgres_server: Server, redis_server: Server, tmp_path: Path
) -> None:
    app = start_cluster(tmp_path, app_env(postgres_server, redis_server, API_KEY_CACHE_TTL="0.5"))
    try:
        key, _ = app.mint()
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(app.url + "/api/stats", headers=headers, timeout=5).status_code == 200
        assert keys.revoke(app.env["DATABASE_URL"], key[: keys.SHOWN_PREFIX_LEN]) == 1
        time.sleep(0.6)
        refused = httpx.get(app.url + "/api/stats", headers=headers, timeout=5)
        assert refused.status_code == 401
    finally:
        app.stop()


def test_other_users_reads_and_writes_are_404(
    two_users: tuple[httpx.Client, int, httpx.Client],
) -> None:
    mine, owner, theirs = two_users
    created = mine.post("/api/submissions", json={"title": "private", "content": "secret"})
    assert created.status_code == 202
    sid, job = created.json()["id"], created.json()["job_id"]
    # The owner reads first, so the row and the job are cached when the other user asks.
    assert mine.get(f"/api/submissions/{sid}").status_code == 200
    assert mine.get(f"/api/jobs/{job}").status_code == 200
    assert len(mine.get(f"/api/users/{owner}/submissions").json()["items"]) == 1

    missing = uuid.uuid4()
    for client, target in ((theirs, sid), (mine, missing)):  # identical answers
        got = client.get(f"/api/submissions/{target}")
        assert (got.status_code, got.json()) == (404, {"detail": "submission not found"})
        fresh = client.get(f"/api/submissions/{target}", headers={"Cache-Control": "no-cache"})
        assert fresh.status_code == 404
        patched = client.patch(f"/api/submissions/{target}", json={"title": "pwned"})
        assert (patched.status_code, patched.json()) == (404, {"detail": "submission not found"})
    assert theirs.get(f"/api/jobs/{job}").status_code == 404
    assert theirs.get(f"/api/jobs/{job}", headers={"Cache-Control": "no-cache"}).status_code == 404
    listed = theirs.get(f"/api/users/{owner}/submissions")
    assert (listed.status_code, listed.json()) == (404, {"detail": "user not found"})
    assert theirs.delete(f"/api/submissions/{sid}").status_code == 404
    # Creating in someone else's name is refused.
    forged = theirs.post("/api/submissions", json={"user_id": owner, "title": "t", "content": "c"})
    assert forged.status_code == 403

    # Nothing the other user did changed the owner's row.
    body = mine.get(f"/api/submissions/{sid}", headers={"Cache-Control": "no-cache"}).json()
    assert (body["title"], body["version"], body["user_id"]) == ("private", 1, owner)
    assert mine.delete(f"/api/submissions/{sid}").status_code == 204


def test_keys_are_stored_hashed(cluster: Cluster) -> None:
    key, user = cluster.mint(tier="basic")
    with psycopg.connect(cluster.env["DATABASE_URL"], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT key_hash, prefix, tier FROM api_keys WHERE user_id = %s", (user,)
        ).fetchall()
    assert rows == [(hashlib.sha256(key.encode()).digest(), key[:11], "basic")]
    assert key.startswith("rk_") and len(key) == 3 + 43


def run_keys(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": cluster.env["DATABASE_URL"]}
    return subprocess.run(
        [sys.executable, "-m", "refapp.keys", *args],
        cwd=APP_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_cli_writes_a_new_private_file_once(cluster: Cluster, tmp_path: Path) -> None:
    out = tmp_path / "keys.json"
    args = ("create", "--user", "4242", "--tier", "free", "--tier", "basic", "--count", "2")
    done = run_keys(cluster, *args, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    minted = json.loads(out.read_text())
    assert [(m["user"], m["tier"]) for m in minted] == [(4242, "free")] * 2 + [(4242, "basic")] * 2
    assert len({m["key"] for m in minted}) == 4
    assert done.stdout == ""  # shown once: in the file only
    headers = {"Authorization": f"Bearer {minted[0]['key']}"}
    assert httpx.get(cluster.url + "/api/stats", headers=headers, timeout=5).status_code == 200

    again = run_keys(cluster, *args, "--out", str(out))
    assert again.returncode == 2
    assert "exists" in again.stderr
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    through = run_keys(cluster, *args, "--out", str(link))
    assert through.returncode == 2
    assert not (tmp_path / "elsewhere.json").exists()
    bad = run_keys(cluster, "create", "--user", "0", "--tier", "free", "--out", "-")
    assert bad.returncode == 2


def test_settings_repr_hides_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    from refapp.settings import Settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://refapp:hunter2@db.internal:5432/refapp")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter3@cache.internal:6379/0")
    text = repr(Settings())
    assert "hunter2" not in text and "hunter3" not in text
    assert "db.internal" not in text
