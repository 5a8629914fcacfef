"""Steady traffic for fault drills (`scalectl drill`): cached reads of a small hot pool and
document submissions, at a mix set by the drill.

Every 202 answer's submission id is appended to `SCALECTL_DRILL_ACKS` (when set), so a drill
can check afterwards that no acknowledged write was lost. With `SCALECTL_DRILL_FREE_SHARE`
above 0, that share of users use a free-tier key (from SCALECTL_API_KEYS_FILE) and name
their requests with a ` [free]` suffix, so shedding by tier shows per endpoint. The others
use keys of SCALECTL_API_TIER (premium). All keys should belong to one user: the users share
a pool of hot submissions, and the app answers 404 to other users' ids.

Request names: GET /api/submissions/{id}, POST /api/submissions (and the ` [free]` ones).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import common  # noqa: E402
from locust import FastHttpUser, between, task  # noqa: E402

READS = common.env_int("SCALECTL_DRILL_READS", 9, minimum=0)
WRITES = common.env_int("SCALECTL_DRILL_WRITES", 1, minimum=0)
POOL_SIZE = common.env_int("SCALECTL_DRILL_POOL", 20)
FREE_SHARE = common.env_float("SCALECTL_DRILL_FREE_SHARE", 0.0)
ACKS = os.environ.get("SCALECTL_DRILL_ACKS", "")
WAIT_MIN = common.env_float("SCALECTL_WAIT_MIN", 0.5)
WAIT_MAX = common.env_float("SCALECTL_WAIT_MAX", 1.5, minimum=WAIT_MIN)

POOL: list[str] = []  # hot ids shared by the users of this process


def _why(resp: object) -> str:
    """The status and the app's error `detail` (low cardinality: no ids in it)."""
    status = getattr(resp, "status_code", 0)
    try:
        detail = resp.json().get("detail")  # type: ignore[attr-defined]
    except Exception:
        detail = None
    return f"{status}" + (f" {str(detail)[:60]}" if isinstance(detail, str) else "")


def _acknowledged(sid: str) -> None:
    if ACKS:
        # One short line per write, appended: lines from several processes do not interleave.
        with open(ACKS, "a", encoding="ascii") as handle:
            handle.write(sid + "\n")


class DrillUser(FastHttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        self.rng = common.rng_for_user()
        self.suffix = ""
        tier = None
        if FREE_SHARE > 0 and self.rng.random() < FREE_SHARE:
            tier = "free"
            self.suffix = " [free]"
        self.headers = common.client_headers(common.take_key(tier))
        self.ids = common.Zipf(POOL_SIZE, 1.1, self.rng)
        for _ in range(3):  # bounded seeding; the pool fills from the first users
            if len(POOL) >= POOL_SIZE:
                break
            self._write()

    def _write(self) -> None:
        title, content = common.cv_text(self.rng, 600)
        body = {"title": title, "content": content}  # owned by the key's user
        with self.client.post(
            common.SUBMISSIONS,
            json=body,
            headers=self.headers,
            name=common.SUBMISSIONS + self.suffix,
            catch_response=True,
        ) as resp:
            if resp.status_code != 202:
                resp.failure(f"expected 202, got {_why(resp)}")
                return
            sid = resp.json()["id"]
            _acknowledged(sid)
            if len(POOL) < POOL_SIZE:
                POOL.append(sid)

    @task(READS)
    def read(self) -> None:
        if not POOL:
            return
        sid = POOL[self.ids.sample() % len(POOL)]
        with self.client.get(
            f"/api/submissions/{sid}",
            headers=self.headers,
            name=common.SUBMISSION + self.suffix,
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"expected 200, got {_why(resp)}")

    @task(WRITES)
    def write(self) -> None:
        self._write()
