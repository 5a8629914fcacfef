"""The Redis connection shared by the cache and the rate limiter, behind a circuit breaker.

Timeouts are short and redis-py's own retries are off: while Redis is down (or frozen) a
request should lose at most one socket timeout to it before the breaker opens, and none
after."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from refapp.breaker import CircuitBreaker
from refapp.settings import Settings

# Errors that say Redis is unreachable; anything else (a WRONGTYPE, a script error) is a bug
# on our side and must not open the breaker.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisDependency:
    def __init__(self, settings: Settings) -> None:
        self.configured = bool(settings.redis_url)
        self.pool = aioredis.ConnectionPool.from_url(
            settings.redis_url or "redis://127.0.0.1:6379/0",
            socket_timeout=settings.redis_socket_timeout,
            socket_connect_timeout=settings.redis_socket_timeout,
            retry=Retry(NoBackoff(), 0),
            max_connections=settings.redis_max_connections,
        )
        self.client = aioredis.Redis(connection_pool=self.pool)
        self.breaker = CircuitBreaker(
            "redis",
            failure_threshold=settings.breaker_failure_threshold,
            reset_seconds=settings.breaker_reset_seconds,
            probe=self.ping,
            probe_timeout=max(0.5, settings.redis_socket_timeout * 2),
        )

    @property
    def available(self) -> bool:
        return self.configured and self.breaker.closed

    async def ping(self) -> None:
        await self.client.ping()

    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[aioredis.Redis]:
        """Use the client and feed the outcome to the breaker. Callers check `available`
        first and treat UNREACHABLE as a miss (degrade, never fail the request)."""
        self.breaker.check()
        try:
            yield self.client
        except UNREACHABLE as exc:
            self.breaker.record_failure(exc)
            raise
        else:
            self.breaker.record_success()

    async def close(self) -> None:
        await self.breaker.aclose()
        await self.client.aclose()
        await self.pool.aclose()
