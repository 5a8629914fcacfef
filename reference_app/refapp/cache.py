"""Cache-aside in two layers: an in-process L1 (a small LRU, TTL CACHE_L1_TTL) in front of
Redis (L2, TTL per content type).

Staleness across processes: a write drops its keys from its own L1 at once and publishes
them on a Redis channel that every worker (of every instance) listens to, so other workers
drop them within milliseconds. A worker uses its L1 only while it is subscribed and its Redis
breaker is closed, and empties it when either changes, because messages sent meanwhile are
lost. What is left (a message in flight, an outage this worker did not notice) is bounded by
the L1 TTL, which is why it stays short (CACHE_L1_TTL, 2 s by default).

Stampedes: concurrent misses for one key in a process share one load (single flight); across
processes, a `SET NX PX` lock lets one process recompute while others poll Redis briefly for
the value it stores (CACHE_LOCK_WAIT_MS) before loading it themselves.

Values are JSON-ready (strings, numbers, lists, dicts): the same shape from the database, from
Redis and from L1. Treat them as read-only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter

from refapp import cachekeys
from refapp.cachekeys import Invalidation
from refapp.metrics import CACHE_REQUESTS, child
from refapp.redisconn import UNREACHABLE, RedisDependency
from refapp.settings import Settings

log = logging.getLogger(__name__)

Loader = Callable[[], Awaitable[Any]]

# What `Cache._redis` returns when Redis could not answer (None is a valid answer: a miss).
DOWN: Any = object()

# Store the value only if no write has marked the key since this reader started (the
# marker is as the reader saw it beside its miss: ARGV[4], '' for none), and release the
# recompute lock if we still hold it. Each write sets a fresh random marker, so a reader
# that started after the last write fills at once, and one that overlapped it never does.
_FILL = """
local marker = redis.call('GET', KEYS[2]) or ''
if marker ~= ARGV[4] then
  if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class L1:
    """A bounded LRU with per-entry expiry."""

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max(1, max_entries)
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, Any]:
        entry = self._data.get(key)
        if entry is None:
            return False, None
        if entry[0] < time.monotonic():
            del self._data[key]
            return False, None
        self._data.move_to_end(key)
        return True, entry[1]

    def set(self, key: str, value: Any) -> None:
        if self.ttl <= 0:
            return
        self._data[key] = (time.monotonic() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def evict(
        self, keys: tuple[str, ...] | list[str], prefixes: tuple[str, ...] | list[str]
    ) -> None:
        for key in keys:
            self._data.pop(key, None)
        if prefixes:
            for key in [k for k in self._data if k.startswith(tuple(prefixes))]:
                del self._data[key]

    def clear(self) -> None:
        self._data.clear()


class Cache:
    def __init__(self, settings: Settings, redis: RedisDependency) -> None:
        self.settings = settings
        self.redis = redis
        self.l1 = L1(settings.cache_l1_ttl, settings.cache_l1_max_entries)
        # Serialized bodies of L1's values, kept with the value they were made from.
        self._bodies = L1(settings.cache_l1_ttl, settings.cache_l1_max_entries)
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self._pending: Invalidation | None = None  # writes Redis has not heard of yet
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = False
        self._l1_trips = 0  # the Redis breaker's trip count when L1 was last emptied
        self._fill = redis.client.register_script(_FILL)
        self._release = redis.client.register_script(_RELEASE)

    # -- reads -------------------------------------------------------------------------

    def body(self, key: str, value: Any, adapter: TypeAdapter[Any]) -> bytes:
        """`value` validated and serialized as JSON by `adapter`, reusing the bytes made for
        the same cached object (the one L1 holds under `key`), so a hit costs neither."""
        hit, made = self._bodies.get(key)
        if hit and made[0] is value:  # the same object: it is read-only (module doc)
            return made[1]  # type: ignore[no-any-return]
        body = adapter.dump_json(adapter.validate_python(value))
        if self._l1_usable():
            self._bodies.set(key, (value, body))
        return body

    async def get_or_load(self, key: str, ttl: int, loader: Loader, *, fresh: bool = False) -> Any:
        """The cached value, or loader()'s (None is returned and not cached).

        fresh: the client sent `Cache-Control: no-cache`, which asks for a response from
        the origin; the cache is neither read nor filled (RFC 9111 §5.2.1.4)."""
        if fresh:
            child(CACHE_REQUESTS, "l1", "bypass").inc()
            return await loader()
        if self._l1_usable():
            hit, value = self.l1.get(key)
            child(CACHE_REQUESTS, "l1", "hit" if hit else "miss").inc()
            if hit:
                return value
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, ttl, loader))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        # shield: a caller that goes away must not cancel the load others are waiting for.
        return await asyncio.shield(task)

    async def _load(self, key: str, ttl: int, loader: Loader) -> Any:
        if not self.redis.available:
            return self._keep(key, await loader())
        # The value and the key's write marker in one round trip: the marker as it is now
        # decides whether this reader's load may be stored (_FILL).
        got = await self._redis(lambda r: r.mget(key, cachekeys.marker(key)))
        raw, seen = (DOWN, None) if got is DOWN else got
        child(CACHE_REQUESTS, "l2", "hit" if raw not in (None, DOWN) else "miss").inc()
        if raw is DOWN:
            return self._keep(key, await loader())
        if raw is not None:
            return self._keep(key, json.loads(raw))
        token = uuid.uuid4().hex
        lock_key = cachekeys.lock(key)
        held = await self._redis(
            lambda r: r.set(lock_key, token, nx=True, px=self.settings.cache_lock_ms)
        )
        if held is None:  # another process is recomputing: wait briefly for its value
            raw = await self._wait_for_fill(key)
            if raw is not None:
                return self._keep(key, json.loads(raw))
        held = held is True
        try:
            value = await loader()
        except BaseException:
            if held:
                await self._redis(lambda r: self._release(keys=[lock_key], args=[token], client=r))
            raise
        if value is None:
            if held:
                await self._redis(lambda r: self._release(keys=[lock_key], args=[token], client=r))
            return None
        stored = await self._redis(
            lambda r: self._fill(
                keys=[key, cachekeys.marker(key), lock_key],
                args=[json.dumps(value), ttl, token, seen or b""],
                client=r,
            )
        )
        # Refused (a write happened while we loaded): the value may predate it, so it
        # goes into neither layer.
        return self._keep(key, value) if stored != 0 else value

    def _l1_usable(self) -> bool:
        """L1 is trusted only while invalidations can reach it (see the module doc)."""
        if not (self._subscribed and self.redis.available):
            return False
        if self.redis.breaker.trips != self._l1_trips:
            self.l1.clear()
            self._l1_trips = self.redis.breaker.trips
        return True

    def _keep(self, key: str, value: Any) -> Any:
        if value is not None and self._l1_usable():
            self.l1.set(key, value)
        return value

    async def _wait_for_fill(self, key: str) -> bytes | None:
        deadline = time.monotonic() + self.settings.cache_lock_wait_ms / 1000
        delay = 0.01
        while time.monotonic() < deadline and self.redis.available:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            raw = await self._redis(lambda r: r.get(key))
            if raw is DOWN:
                return None
            if raw is not None:
                return raw  # type: ignore[no-any-return]
        return None

    async def _redis(self, op: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run op against Redis; DOWN when Redis is unavailable (reads degrade to misses)."""
        if not self.redis.available:
            return DOWN
        try:
            async with self.redis.guard() as client:
                return await op(client)
        except UNREACHABLE as exc:
            log.info("redis unavailable for cache", extra={"error": repr(exc)})
            return DOWN

    async def user_list_version(self, user_id: int) -> int | None:
        """The version that names the user's cached list pages; None without Redis (the
        caller then skips caching: it could not invalidate other workers anyway)."""
        key = cachekeys.user_version(user_id)
        if self._l1_usable():
            hit, value = self.l1.get(key)
            if hit:
                return int(value)
        raw = await self._redis(lambda r: r.get(key))
        if raw is DOWN:
            return None
        version = int(raw or 0)
        self._keep(key, version)
        return version

    # -- writes ------------------------------------------------------------------------

    async def invalidate(self, invalidation: Invalidation) -> None:
        """Call after the write commits. Never raises: a write that reached PostgreSQL has
        succeeded; if Redis missed it the invalidation is kept and replayed on recovery."""
        self.l1.evict(invalidation.keys, invalidation.prefixes)
        if not self.redis.configured:
            return
        # Take everything owed so far; whatever fails goes back, merged with any invalidation
        # another request queued while this one was sending.
        batch = invalidation if self._pending is None else self._pending.merge(invalidation)
        self._pending = None
        if not await self._send(batch):
            self._pending = batch if self._pending is None else batch.merge(self._pending)

    async def _send(self, invalidation: Invalidation) -> bool:
        async def run(client: Any) -> Any:
            pipe = client.pipeline(transaction=False)
            invalidation.apply(pipe)
            return await pipe.execute()

        return await self._redis(run) is not DOWN

    # -- cross-worker L1 invalidation ----------------------------------------------------

    def start(self) -> None:
        if self.redis.configured:
            self._listener = asyncio.create_task(self._listen(), name="cache-invalidations")

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._subscribe_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("invalidation subscription lost", extra={"error": repr(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _subscribe_once(self) -> None:
        # A connection of its own without the socket timeout: it blocks on reads.
        client = self.redis.client.client()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(cachekeys.CHANNEL)
            # Messages sent while we were not subscribed are lost: start clean.
            self.l1.clear()
            self._subscribed = True
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if self._pending is not None and self.redis.available:
                    await self.invalidate(Invalidation())
                if message is None or message.get("type") != "message":
                    continue
                try:
                    body = json.loads(message["data"])
                    self.l1.evict(body.get("keys", []), body.get("prefixes", []))
                except (ValueError, TypeError, AttributeError):
                    log.warning("bad invalidation message", extra={"data": repr(message)})
        finally:
            self._subscribed = False
            self.l1.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()
