"""Cache key names and the invalidation of a write, shared by the web tier (refapp.cache)
and anything else that changes cached rows (the queue workers, which update a
submission's status, call `invalidate_sync`).

Invalidating means, in one Redis pipeline:
- DEL the entity keys (submission, stats, job);
- SET a short-lived "recently written" marker beside each one, a fresh random value per
  write, so a reader that loaded the old row before the write cannot put it back into
  Redis after the DEL (the fill script refuses unless the marker is still what the reader
  saw beside its miss), while a reader that started after the write fills at once;
- INCR the user's list version: list pages live under versioned keys, so a write makes
  every cached page of that user unreachable without a SCAN;
- PUBLISH the keys and prefixes, so every worker drops them from its in-process L1.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PREFIX = "refapp:"
CHANNEL = PREFIX + "invalidate"
# How long a write's marker lives: longer than a read's load time (a reader that saw no
# marker and loads for longer than this, across a write, could store what it read).
WRITE_MARKER_MS = 2000


def submission(submission_id: str) -> str:
    return f"{PREFIX}sub:{submission_id}"


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def stats() -> str:
    return f"{PREFIX}stats"


def user_prefix(user_id: int) -> str:
    return f"{PREFIX}user:{user_id}:"


def user_version(user_id: int) -> str:
    return f"{user_prefix(user_id)}ver"


def user_page(user_id: int, version: int, limit: int, cursor: str | None) -> str:
    return f"{user_prefix(user_id)}v{version}:page:{limit}:{cursor or '-'}"


def lock(key: str) -> str:
    return f"{key}:lock"


def marker(key: str) -> str:
    return f"{key}:written"


@dataclass(frozen=True)
class Invalidation:
    keys: tuple[str, ...] = ()
    user_ids: tuple[int, ...] = ()
    prefixes: tuple[str, ...] = field(default=())

    @classmethod
    def for_write(
        cls,
        *,
        submission_ids: Iterable[str] = (),
        user_ids: Iterable[int] = (),
        job_ids: Iterable[str] = (),
    ) -> Invalidation:
        """Everything a write to these rows can make stale; stats always change."""
        users = tuple(sorted(set(user_ids)))
        keys = (
            *(submission(s) for s in submission_ids),
            *(job(j) for j in job_ids),
            stats(),
        )
        return cls(keys=keys, user_ids=users, prefixes=tuple(user_prefix(u) for u in users))

    def merge(self, other: Invalidation) -> Invalidation:
        return Invalidation(
            keys=tuple(dict.fromkeys((*self.keys, *other.keys))),
            user_ids=tuple(sorted({*self.user_ids, *other.user_ids})),
            prefixes=tuple(dict.fromkeys((*self.prefixes, *other.prefixes))),
        )

    def message(self) -> str:
        return json.dumps({"keys": list(self.keys), "prefixes": list(self.prefixes)})

    def apply(self, pipe: Any) -> None:
        """Queue the commands on a redis-py pipeline (sync or asyncio)."""
        if self.keys:
            pipe.delete(*self.keys)
        token = uuid.uuid4().hex  # never reused, so a marker cannot come back to a value
        for key in self.keys:
            pipe.set(marker(key), token, px=WRITE_MARKER_MS)
        for user_id in self.user_ids:
            pipe.incr(user_version(user_id))
        pipe.publish(CHANNEL, self.message())


def invalidate_sync(client: Any, invalidation: Invalidation) -> None:
    """For synchronous writers (the Dramatiq workers): `client` is a redis.Redis."""
    pipe = client.pipeline(transaction=False)
    invalidation.apply(pipe)
    pipe.execute()
