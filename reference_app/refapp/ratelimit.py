"""Rate limits in Redis with the `limits` library's sliding-window-counter strategy (async
storage: slowapi's synchronous one would block the event loop). Two limits per request:
per client IP, and per API key (its database id) within the key's tier. The tighter one
sets the RateLimit-* headers (IETF draft names), which every limited response carries; a
breach answers 429 with Retry-After. If Redis cannot answer, requests go through (fail
open) and are counted in rate_limit_fail_open_total: losing the limiter must not take the
API down with it."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from refapp import clients
from refapp.errors import send_json
from refapp.metrics import RATE_LIMIT_FAIL_OPEN, RATE_LIMITED
from refapp.principal import caller as caller_of
from refapp.redisconn import UNREACHABLE, RedisDependency
from refapp.settings import Settings


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    name: str  # "ip" or the tier
    limit: int
    remaining: int
    reset_after: int  # whole seconds until a request would be allowed again

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_after))
        return headers


class RateLimiter:
    def __init__(self, settings: Settings, redis: RedisDependency) -> None:
        self.redis = redis
        # Share the app's Redis pool (short timeouts, no retries) instead of a second one.
        storage = RedisStorage(
            "async+" + (settings.redis_url or "redis://127.0.0.1:6379/0"),
            implementation="redispy",
            connection_pool=redis.pool,  # type: ignore[arg-type]
        )
        self.strategy = SlidingWindowCounterRateLimiter(storage)
        self.per_ip = parse(settings.rate_limit_per_ip)
        self.per_tier: dict[str, RateLimitItem] = {
            "premium": parse(settings.rate_limit_tier_premium),
            "basic": parse(settings.rate_limit_tier_basic),
            "free": parse(settings.rate_limit_tier_free),
        }

    async def _one(self, name: str, item: RateLimitItem, *ids: str) -> Verdict:
        allowed = await self.strategy.hit(item, *ids)
        stats = await self.strategy.get_window_stats(item, *ids)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, name, item.amount, stats.remaining, reset)

    async def check(self, ip: str, tier: str, bucket: str | None) -> Verdict | None:
        """The binding verdict, or None when Redis is unavailable (fail open)."""
        if not self.redis.configured:
            return None
        if not self.redis.available:
            RATE_LIMIT_FAIL_OPEN.inc()
            return None
        try:
            async with self.redis.guard():
                verdicts = await asyncio.gather(
                    self._one("ip", self.per_ip, "ip", ip),
                    # The bucket is the key's database id, never a client-chosen string:
                    # rotating made-up keys gives no fresh bucket (they get 401 anyway).
                    # Without a key (outside /api) a caller is its IP within the tier.
                    self._one(tier, self.per_tier[tier], tier, bucket or f"ip:{ip}"),
                )
        except UNREACHABLE:
            RATE_LIMIT_FAIL_OPEN.inc()
            return None
        return min(verdicts, key=lambda v: (v.allowed, v.remaining))


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or clients.is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        caller = caller_of(scope)
        verdict = await self.limiter.check(
            clients.client_ip(scope),
            caller.tier if caller else clients.DEFAULT_TIER,
            f"key:{caller.key_id}" if caller else None,
        )
        if verdict is None:
            await self.app(scope, receive, send)
            return
        headers = verdict.headers()
        if not verdict.allowed:
            RATE_LIMITED.labels(verdict.name).inc()
            await send_json(send, 429, {"detail": "rate limit exceeded"}, headers)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
