"""Rate limits in Redis: GCRA (the generic cell rate algorithm) for two limits per request,
per client IP and per API key (its database id) within the key's tier, decided together by
one Lua script in one round trip. A limit of N per period P admits a burst of N and then one
request every P/N; each key holds a single timestamp (the theoretical arrival time), so a
limit costs one small string in Redis whatever its rate. The tighter limit sets the
RateLimit-* headers (IETF draft names), which every limited response carries; a breach
answers 429 with Retry-After and consumes nothing from either limit. If Redis cannot
answer, requests go through (fail open) and are counted in rate_limit_fail_open_total:
losing the limiter must not take the API down with it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from limits import RateLimitItem, parse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from refapp import clients
from refapp.errors import send_json
from refapp.metrics import RATE_LIMIT_FAIL_OPEN, RATE_LIMITED
from refapp.principal import caller as caller_of
from refapp.redisconn import UNREACHABLE, RedisDependency
from refapp.settings import Settings

# KEYS: one per limit. ARGV: per limit, its emission interval and its period (microseconds).
# Returns {allowed, then per limit: remaining, microseconds until fully reset, microseconds
# until one more request would be allowed}. Redis's own clock: every instance agrees.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local allowed = 1
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  tats[i] = tat
  if tat + interval - now > period then allowed = 0 end
end
local result = {allowed}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local tat = tats[i]
  if allowed == 1 then
    tat = tat + interval
    redis.call('SET', KEYS[i], tat, 'PX', math.ceil((tat - now) / 1000) + 1)
  end
  local used = tat - now
  result[#result + 1] = math.floor((period - used) / interval)
  result[#result + 1] = used
  result[#result + 1] = math.max(0, tat + interval - now - period)
end
return result
"""
_PREFIX = "rl:"


@dataclass(frozen=True)
class Verdict:
    """One limit's answer for one request."""

    allowed: bool
    name: str  # "ip" or the tier
    limit: int
    remaining: int
    reset_after: int  # whole seconds until the limit is whole again
    retry_after: int  # whole seconds until one more request would be allowed

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.retry_after))
        return headers


@dataclass(frozen=True)
class _Limit:
    name: str
    amount: int
    interval_us: int
    period_us: int

    @classmethod
    def of(cls, name: str, item: RateLimitItem) -> _Limit:
        period_us = item.get_expiry() * 1_000_000
        return cls(name, item.amount, max(1, period_us // item.amount), period_us)


def _seconds(microseconds: int) -> int:
    return max(0, math.ceil(microseconds / 1_000_000))


class RateLimiter:
    """The app's two limits (per IP, per key within its tier), checked in one round trip."""

    def __init__(self, settings: Settings, redis: RedisDependency) -> None:
        self.redis = redis
        self.per_ip = _Limit.of("ip", parse(settings.rate_limit_per_ip))
        self.per_tier = {
            "premium": _Limit.of("premium", parse(settings.rate_limit_tier_premium)),
            "basic": _Limit.of("basic", parse(settings.rate_limit_tier_basic)),
            "free": _Limit.of("free", parse(settings.rate_limit_tier_free)),
        }
        self.script = redis.client.register_script(_GCRA)

    async def check(self, ip: str, tier: str, bucket: str | None) -> Verdict | None:
        """The binding verdict, or None when Redis is unavailable (fail open)."""
        if not self.redis.configured:
            return None
        if not self.redis.available:
            RATE_LIMIT_FAIL_OPEN.inc()
            return None
        tier_limit = self.per_tier[tier]
        limits = (self.per_ip, tier_limit)
        # The bucket is the key's database id, never a client-chosen string: rotating
        # made-up keys gives no fresh bucket (they get 401 anyway). Without a key (outside
        # /api) a caller is its IP within the tier.
        keys = [f"{_PREFIX}ip:{ip}", f"{_PREFIX}{tier}:{bucket or f'ip:{ip}'}"]
        args = [n for limit in limits for n in (limit.interval_us, limit.period_us)]
        try:
            async with self.redis.guard():
                answer = await self.script(keys=keys, args=args)
        except UNREACHABLE:
            RATE_LIMIT_FAIL_OPEN.inc()
            return None
        allowed = bool(answer[0])
        verdicts = [
            Verdict(
                allowed,
                limit.name,
                limit.amount,
                max(0, int(answer[1 + 3 * i])),
                _seconds(int(answer[2 + 3 * i])),
                _seconds(int(answer[3 + 3 * i])),
            )
            for i, limit in enumerate(limits)
        ]
        if allowed:
            return min(verdicts, key=lambda v: v.remaining)
        # Refused by the limit whose next free slot is furthest away; nothing was consumed.
        return max(verdicts, key=lambda v: v.retry_after)


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
