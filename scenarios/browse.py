"""Read-heavy browsing (cache friendly).

Seeds a bounded, shared pool of submissions (module level, filled by the first users'
`on_start`), then reads them with Zipf-distributed ids so a few hot documents take most
reads, as real traffic does: this exercises the L1/L2 cache, single-flight loading and the
read path (replica routing when configured). Also pages through users' lists (keyset
cursor) and reads `/api/stats`. A small share of reads send `Cache-Control: no-cache`
(straight to PostgreSQL) under their own request name so they do not skew the cached SLO.

Request names: GET /api/submissions/{id}, GET /api/submissions/{id} [no-cache],
GET /api/users/{id}/submissions, GET /api/stats, POST /api/submissions (seeding only).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import common  # noqa: E402
from locust import FastHttpUser, between, task  # noqa: E402

POOL_SIZE = common.env_int("SCALECTL_BROWSE_POOL", 100)
SEED_PER_USER = common.env_int("SCALECTL_BROWSE_SEED_PER_USER", 10)
PAGES = common.env_int("SCALECTL_BROWSE_PAGES", 3)
PAGE_SIZE = common.env_int("SCALECTL_BROWSE_PAGE_SIZE", 20)
ZIPF_S = common.env_float("SCALECTL_ZIPF_S", 1.1)
WAIT_MIN = common.env_float("SCALECTL_WAIT_MIN", 0.5)
WAIT_MAX = common.env_float("SCALECTL_WAIT_MAX", 2.0, minimum=WAIT_MIN)

# Shared by every BrowseUser of this process: ids in creation order (rank 0 is the hottest).
POOL: list[str] = []


class BrowseUser(FastHttpUser):
    """Reads documents by popularity, pages user lists, checks stats."""

    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        self.rng = common.rng_for_user()
        self.key = common.take_key()
        self.headers = common.client_headers(self.key)
        self.ids = common.Zipf(POOL_SIZE, ZIPF_S, self.rng)
        for _ in range(SEED_PER_USER):
            if len(POOL) >= POOL_SIZE:
                break
            self._seed_one()

    def _user_id(self) -> int:
        # The app scopes lists to the key's user: other users' lists are 404.
        return self.key.user

    def _seed_one(self) -> None:
        title, content = common.cv_text(self.rng)
        body = {"title": title, "content": content}  # owned by the key's user
        with self.client.post(
            common.SUBMISSIONS,
            json=body,
            headers=self.headers,
            name=common.SUBMISSIONS,
            catch_response=True,
        ) as resp:
            if resp.status_code != 202:
                resp.failure(f"expected 202, got {resp.status_code}")
                return
            POOL.append(resp.json()["id"])

    def _pick(self) -> str | None:
        if not POOL:
            return None
        # Ranks cover the full pool size; while the pool is still filling, wrap around.
        return POOL[self.ids.sample() % len(POOL)]

    def _read(self, no_cache: bool) -> None:
        sid = self._pick()
        if sid is None:
            return
        headers = dict(self.headers)
        if no_cache:
            headers["Cache-Control"] = "no-cache"
        name = common.SUBMISSION_NO_CACHE if no_cache else common.SUBMISSION
        with self.client.get(
            f"/api/submissions/{sid}", headers=headers, name=name, catch_response=True
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"expected 200, got {resp.status_code}")
            elif resp.json().get("id") != sid:
                resp.failure("body is for another submission")

    @task(10)
    def read_submission(self) -> None:
        self._read(no_cache=False)

    @task(1)
    def read_submission_no_cache(self) -> None:
        self._read(no_cache=True)

    @task(3)
    def list_user_submissions(self) -> None:
        path = f"/api/users/{self._user_id()}/submissions"
        cursor: str | None = None
        for _ in range(PAGES):  # bounded: at most PAGES pages per visit
            query = f"?limit={PAGE_SIZE}" + (f"&cursor={cursor}" if cursor else "")
            with self.client.get(
                path + query,
                headers=self.headers,
                name=common.USER_SUBMISSIONS,
                catch_response=True,
            ) as resp:
                if resp.status_code != 200:
                    resp.failure(f"expected 200, got {resp.status_code}")
                    return
                cursor = resp.json().get("next_cursor")
            if not cursor or self.rng.random() < 0.5:  # most visitors stop early
                return

    @task(2)
    def stats(self) -> None:
        self.client.get(common.STATS, headers=self.headers, name=common.STATS)
