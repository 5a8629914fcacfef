"""Who is calling: the API key of every /api request, resolved to its user and tier.

Keys arrive as `Authorization: Bearer <key>` (or `X-API-Key: <key>`). A missing, malformed,
unknown or revoked key answers 401 with the same generic body, before shedding and rate
limiting; the resolved `Principal` is put in the ASGI scope, where the shedder, the limiter
and the routes read it. Nothing a client sends besides the key sets its tier.

Speed: a worker keeps resolved keys in a bounded in-process cache for API_KEY_CACHE_TTL
seconds (30 by default), so the hot path does no database round trip. The price is the
revocation delay: a revoked key keeps working on a worker that cached it for at most that
long. Unknown keys are cached too, briefly (API_KEY_NEGATIVE_TTL) and in a separate bounded
map, so rotating bogus keys cannot evict good entries and costs at most one indexed lookup
per bogus key.

Outages: a key resolved from PostgreSQL is also copied to Redis (API_KEY_OUTAGE_TTL, 10
minutes by default) and read back only when PostgreSQL cannot answer, so every worker keeps
serving cached reads through a database outage, as before keys existed. A key revoked while
PostgreSQL is down may therefore work for up to that long during the outage."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout
from starlette.types import ASGIApp, Receive, Scope, Send

from refapp import cachekeys
from refapp.breaker import CircuitOpenError
from refapp.errors import send_json
from refapp.keys import key_hash
from refapp.principal import SCOPE_KEY, KeyCache, Principal, presented_key, requires_key
from refapp.redisconn import UNREACHABLE, RedisDependency

log = logging.getLogger(__name__)

UNAUTHORIZED: dict[str, object] = {"detail": "missing or invalid API key"}
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
RETRY_BACKUP_AFTER = 2.0  # seconds


Lookup = Callable[[bytes], Awaitable["Principal | None"]]


class RedisBackup:
    """Resolved keys in Redis, consulted only when PostgreSQL is unreachable."""

    def __init__(self, redis: RedisDependency, ttl: int) -> None:
        self.redis = redis
        self.ttl = ttl

    @staticmethod
    def _name(digest: bytes) -> str:
        return f"{cachekeys.PREFIX}apikey:{digest.hex()}"

    async def get(self, digest: bytes) -> Principal | None:
        if not self.redis.available or self.ttl <= 0:
            return None
        try:
            async with self.redis.guard() as client:
                raw = await client.get(self._name(digest))
            return Principal(**json.loads(raw)) if raw else None
        except (*UNREACHABLE, CircuitOpenError, ValueError, TypeError):
            return None

    async def put(self, digest: bytes, found: Principal | None) -> bool:
        """Whether Redis now holds the answer."""
        if not self.redis.available or self.ttl <= 0:
            return False
        try:
            async with self.redis.guard() as client:
                if found is None:
                    await client.delete(self._name(digest))
                else:
                    await client.set(self._name(digest), json.dumps(asdict(found)), ex=self.ttl)
        except (*UNREACHABLE, CircuitOpenError):
            return False
        return True


class KeyResolver:
    def __init__(self, lookup: Lookup, cache: KeyCache, backup: RedisBackup | None = None) -> None:
        self.lookup = lookup
        self.cache = cache
        self.backup = backup
        self._inflight: dict[bytes, asyncio.Task[Principal | None]] = {}

    async def resolve(self, key: str) -> Principal | None:
        digest = key_hash(key)
        hit, found = self.cache.get(digest)
        if hit:
            return found
        task = self._inflight.get(digest)
        if task is None:  # one lookup per key however many requests carry it
            task = asyncio.create_task(self._load(digest))
            self._inflight[digest] = task
            task.add_done_callback(lambda _: self._inflight.pop(digest, None))
        return await asyncio.shield(task)

    async def _load(self, digest: bytes) -> Principal | None:
        try:
            found = await self.lookup(digest)
        except (CircuitOpenError, PoolTimeout, psycopg.OperationalError, OSError):
            hit, stale = self.cache.get(digest, stale=True)
            if hit and stale is not None:
                return stale
            backed = await self.backup.get(digest) if self.backup else None
            if backed is None:
                raise
            self.cache.put(digest, backed)
            return backed
        backed_up = self.backup is None or await self.backup.put(digest, found)
        # Not copied to Redis (down): look the key up again soon, to copy it then, so a
        # later PostgreSQL outage finds it there.
        self.cache.put(digest, found, None if backed_up else RETRY_BACKUP_AFTER)
        return found


def database_lookup(read: Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[Any]]) -> Lookup:
    """A Lookup over Database.read (replicas first, retried like every read)."""

    async def lookup(digest: bytes) -> Principal | None:
        async def query(db: Any) -> Principal | None:
            row = await db.fetchone(
                "SELECT id, user_id, tier FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
                (digest,),
            )
            return Principal(int(row["id"]), int(row["user_id"]), str(row["tier"])) if row else None

        found: Principal | None = await read(query)
        return found

    return lookup


class AuthMiddleware:
    def __init__(self, app: ASGIApp, resolver: KeyResolver) -> None:
        self.app = app
        self.resolver = resolver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not requires_key(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = presented_key(scope)
        try:
            found = await self.resolver.resolve(key) if key else None
        except (CircuitOpenError, PoolTimeout, psycopg.Error, OSError) as exc:
            # psycopg.Error also covers a schema not migrated yet (a worker that started
            # while PostgreSQL was down): unavailable, not a 500.
            log.warning("API key lookup failed", extra={"error": type(exc).__name__})
            await send_json(send, 503, {"detail": "service unavailable"}, {"Retry-After": "1"})
            return
        if found is None:
            await send_json(send, 401, UNAUTHORIZED, _CHALLENGE)
            return
        scope[SCOPE_KEY] = found
        await self.app(scope, receive, send)
