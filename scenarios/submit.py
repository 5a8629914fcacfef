"""Write-heavy submissions.

Posts CV-like documents of log-normally varied length (a few hundred characters to tens
of kilobytes) with a realistic priority mix, then edits (PATCH) and deletes (soft DELETE)
some of its own. Exercises the primary's write transactions, job row inserts and enqueue
to the broker, and cache invalidation (DEL, write markers, list version INCR, PUBLISH).

Request names: POST /api/submissions, PATCH /api/submissions/{id},
DELETE /api/submissions/{id}.
"""

from __future__ import annotations

import sys
from collections import deque
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import common  # noqa: E402
from locust import FastHttpUser, between, task  # noqa: E402

MEDIAN_CHARS = common.env_int("SCALECTL_SUBMIT_MEDIAN_CHARS", 2500)
KEEP = 50  # own ids remembered for PATCH/DELETE (bounded)
WAIT_MIN = common.env_float("SCALECTL_WAIT_MIN", 0.5)
WAIT_MAX = common.env_float("SCALECTL_WAIT_MAX", 2.0, minimum=WAIT_MIN)


class SubmitUser(FastHttpUser):
    """Creates, edits and deletes its own submissions."""

    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        self.rng = common.rng_for_user()
        self.key = common.take_key()
        self.headers = common.client_headers(self.key)
        self.user_id = self.key.user  # the app takes the owner from the key
        self.mine: deque[str] = deque(maxlen=KEEP)

    @task(6)
    def create(self) -> None:
        title, content = common.cv_text(self.rng, common.cv_length(self.rng, MEDIAN_CHARS))
        body = {
            "user_id": self.user_id,
            "title": title,
            "content": content,
            "priority": common.priority(self.rng),
        }
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
            self.mine.append(resp.json()["id"])

    @task(2)
    def update(self) -> None:
        if not self.mine:
            return
        sid = self.rng.choice(self.mine)
        title, _ = common.cv_text(self.rng, 200)
        with self.client.request(
            "PATCH",
            f"/api/submissions/{sid}",
            json={"title": f"{title} (rev)"[:200]},
            headers=self.headers,
            name=common.SUBMISSION,
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"expected 200, got {resp.status_code}")

    @task(1)
    def delete(self) -> None:
        if not self.mine:
            return
        sid = self.mine.popleft()
        with self.client.delete(
            f"/api/submissions/{sid}",
            headers=self.headers,
            name=common.SUBMISSION,
            catch_response=True,
        ) as resp:
            if resp.status_code != 204:
                resp.failure(f"expected 204, got {resp.status_code}")
