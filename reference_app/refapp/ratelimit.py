"""Rate limits in Redis: GCRA (the generic cell rate algorithm) for two limits per request,
per client IP and per API key (its database id) within the key's tier, decided together by
one Lua script in one round trip, or for a busy key, one round trip per lease of several
requests (see RateLimiter). A limit of N per period P admits a burst of N and then one
request every P/N; each key holds a single timestamp (the theoretical arrival time), so a
limit costs one small string in Redis whatever its rate. The tighter limit sets the
RateLimit-* headers (IETF draft names), which every limited response carries; a breach
answers 429 with Retry-After and consumes nothing from either limit. If Redis cannot
answer, requests go through (fail open) and are counted in rate_limit_fail_open_total:
losing the limiter must not take the API down with it."""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

from limits import RateLimitItem, parse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from refapp import clients
from refapp.errors import send_json
from refapp.metrics import RATE_LIMIT_FAIL_OPEN, RATE_LIMITED
from refapp.principal import caller as caller_of
from refapp.redisconn import UNREACHABLE, RedisDependency
from refapp.settings import Settings

# KEYS: one per limit. ARGV: per limit, its emission interval and its period (microseconds),
# then how many requests to admit at once (a lease; 1 for a single request). Admits as many
# as every limit has room for, at most that many, or none. Returns {admitted, then per
# limit: remaining, microseconds until fully reset, microseconds until one more request
# would be allowed}. Redis's own clock: every instance agrees.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local want = tonumber(ARGV[#ARGV])
local admit = want
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  tats[i] = tat
  local room = math.floor((period - (tat - now)) / interval)
  if room < admit then admit = room end
end
if admit < 0 then admit = 0 end
local result = {admit}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local tat = tats[i]
  if admit > 0 then
    tat = tat + admit * interval
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
LEASE_SECONDS = 0.5  # how long a worker may spend a lease before it is dropped
LEASE_SHARE = 20  # a lease holds at most this fraction (1/20) of the tighter limit's burst
LEASE_WAITS = 8  # times a request waits for another's round trip before making its own
LEASES_KEPT = 10_000  # (IP, tier, bucket) entries remembered per worker


class Verdict(NamedTuple):
    """One limit's answer for one request. (A tuple: a lease makes one per request.)"""

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

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """`headers()` of an admitted request, as ASGI header pairs."""
        return [
            (b"ratelimit-limit", b"%d" % self.limit),
            (b"ratelimit-remaining", b"%d" % self.remaining),
            (b"ratelimit-reset", b"%d" % self.reset_after),
        ]


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


@dataclass
class _Lease:
    """Requests Redis admitted for one (IP, tier, bucket) ahead of time, for this worker."""

    left: int
    size: int  # how many the last round trip admitted
    granted: float  # time.monotonic() of that round trip
    verdict: Verdict  # its binding verdict; `remaining` already counts the whole lease


# What requests waiting on another's round trip get: (answered, verdict); answered is
# False when that request was cancelled (its client went away) or failed before Redis
# answered.
_Answer = tuple[bool, Verdict | None]


class RateLimiter:
    """The app's two limits (per IP, per key within its tier), checked in one round trip,
    and for a busy key, one round trip per lease of several requests.

    Leases: when a key's requests arrive faster than one per lease period, one round trip
    admits several of them at once (doubling while leases are used up quickly, at most
    RATE_LIMIT_LEASE_MAX and at most 1/LEASE_SHARE of the tighter limit), and this worker
    spends them locally for LEASE_SECONDS. Redis counts every leased request as made when
    it is leased, so a lease never lets more through than the limit; requests leased and
    not used in time are dropped, which makes the limit stricter by at most one lease per
    worker and key. A quiet key (the first request, or one a lease period) asks Redis each
    time, exactly as without leases."""

    def __init__(self, settings: Settings, redis: RedisDependency) -> None:
        self.redis = redis
        self.per_ip = _Limit.of("ip", parse(settings.rate_limit_per_ip))
        self.per_tier = {
            "premium": _Limit.of("premium", parse(settings.rate_limit_tier_premium)),
            "basic": _Limit.of("basic", parse(settings.rate_limit_tier_basic)),
            "free": _Limit.of("free", parse(settings.rate_limit_tier_free)),
        }
        self.lease_max = settings.rate_limit_lease_max
        self.script = redis.client.register_script(_GCRA)
        self._leases: OrderedDict[tuple[str, str, str], _Lease] = OrderedDict()
        self._fetching: dict[tuple[str, str, str], asyncio.Future[_Answer]] = {}

    async def check(self, ip: str, tier: str, bucket: str | None) -> Verdict | None:
        """The binding verdict, or None when Redis is unavailable (fail open)."""
        if not self.redis.configured:
            return None
        if not self.redis.available:
            RATE_LIMIT_FAIL_OPEN.inc()
            return None
        # The bucket is the key's database id, never a client-chosen string: rotating
        # made-up keys gives no fresh bucket (they get 401 anyway). Without a key (outside
        # /api) a caller is its IP within the tier.
        ident = (ip, tier, bucket or f"ip:{ip}")
        for _ in range(LEASE_WAITS):
            leased = self._spend(ident)
            if leased is not None:
                return leased
            fetching = self._fetching.get(ident)
            if fetching is None:
                break
            # Another request of this key is asking Redis: share its answer, not a trip.
            answered, verdict = await asyncio.shield(fetching)
            if answered and (verdict is None or not verdict.allowed):
                return verdict
            # Admitted (spend from the new lease), or that request went away before Redis
            # answered (cancelled): never let this one through unchecked, look again.
        return await self._ask(ident)

    def _spend(self, ident: tuple[str, str, str]) -> Verdict | None:
        lease = self._leases.get(ident)
        if lease is None or lease.left <= 0 or time.monotonic() - lease.granted > LEASE_SECONDS:
            return None
        lease.left -= 1
        v = lease.verdict
        return Verdict(
            v.allowed, v.name, v.limit, v.remaining + lease.left, v.reset_after, v.retry_after
        )

    def _wanted(self, lease: _Lease | None, limits: tuple[_Limit, _Limit]) -> int:
        cap = min(self.lease_max, max(1, min(limit.amount for limit in limits) // LEASE_SHARE))
        if lease is None:
            return 1
        age = time.monotonic() - lease.granted
        if age > LEASE_SECONDS:  # it ran out of time: lease what was used
            return max(1, min(cap, lease.size - lease.left))
        return max(1, min(cap, lease.size * 2 if age < LEASE_SECONDS / 2 else lease.size))

    async def _ask(self, ident: tuple[str, str, str]) -> Verdict | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Answer] = loop.create_future()
        self._fetching[ident] = future
        answer: _Answer = (False, None)
        try:
            answer = (True, await self._round_trip(ident))
        finally:
            if self._fetching.get(ident) is future:
                del self._fetching[ident]
            future.set_result(answer)
        return answer[1]

    async def _round_trip(self, ident: tuple[str, str, str]) -> Verdict | None:
        ip, tier, bucket = ident
        limits = (self.per_ip, self.per_tier[tier])
        want = self._wanted(self._leases.get(ident), limits)
        keys = [f"{_PREFIX}ip:{ip}", f"{_PREFIX}{tier}:{bucket}"]
        args = [n for limit in limits for n in (limit.interval_us, limit.period_us)]
        try:
            async with self.redis.guard():
                answer = await self.script(keys=keys, args=[*args, want])
        except UNREACHABLE:
            RATE_LIMIT_FAIL_OPEN.inc()
            return None
        admitted = int(answer[0])
        verdicts = [
            Verdict(
                admitted > 0,
                limit.name,
                limit.amount,
                max(0, int(answer[1 + 3 * i])),
                _seconds(int(answer[2 + 3 * i])),
                _seconds(int(answer[3 + 3 * i])),
            )
            for i, limit in enumerate(limits)
        ]
        if not admitted:
            # Refused by the limit whose next free slot is furthest away; nothing was consumed.
            return max(verdicts, key=lambda v: v.retry_after)
        binding = min(verdicts, key=lambda v: v.remaining)
        left = admitted - 1
        held = self._leases.get(ident)  # requests that waited too long made their own trip:
        if held is not None and time.monotonic() - held.granted <= LEASE_SECONDS:
            left += held.left  # keep what is left of the lease in hand, Redis counted it
        self._leases[ident] = _Lease(left, admitted, time.monotonic(), binding)
        self._leases.move_to_end(ident)
        while len(self._leases) > LEASES_KEPT:
            self._leases.popitem(last=False)
        return binding._replace(remaining=binding.remaining + admitted - 1)


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
        if not verdict.allowed:
            RATE_LIMITED.labels(verdict.name).inc()
            await send_json(send, 429, {"detail": "rate limit exceeded"}, verdict.headers())
            return
        extra = clients.response_headers(scope)
        if extra is not None:  # the outermost middleware adds them: no send wrapper here
            extra += verdict.raw_headers()
            await self.app(scope, receive, send)
            return
        mine = verdict.raw_headers()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *mine]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
