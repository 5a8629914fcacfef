"""The limiter's arithmetic against a real Redis: GCRA, both limits in one script, a refusal
consumes nothing, and every app instance shares the same budget (issue 13: one round trip
per request instead of four). Run in a child process: refapp's metrics need their
multiprocess directory before import, as under gunicorn."""

from __future__ import annotations

import json
import time
from typing import Any

from scalectl.stack.servers import Server
from tests.reference_app.cluster import run_driver

DRIVER = """
import asyncio, json, sys, time
from refapp.ratelimit import RateLimiter
from refapp.redisconn import RedisDependency
from refapp.settings import Settings

def shown(v):
    return {"allowed": v.allowed, "name": v.name, "limit": v.limit,
            "remaining": v.remaining, "headers": v.headers()}

async def trips(redis):
    stats = await redis.client.info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_evalsha", "cmdstat_eval"))

async def main():
    spec = json.loads(sys.argv[1])
    settings = Settings(redis_url=spec["redis"], **spec["limits"])
    # Several limiters: as many workers, each with its own leases, one Redis.
    limiters = [RateLimiter(settings, RedisDependency(settings)) for _ in range(spec["workers"])]
    out = []
    for ip, tier, bucket, pause in spec["calls"]:
        time.sleep(pause)
        out.append(shown(await limiters[0].check(ip, tier, bucket)))
    before = await trips(limiters[0].redis)
    for ip, tier, bucket, rounds, each in spec["concurrent"]:
        for _ in range(rounds):
            group = [l.check(ip, tier, bucket) for l in limiters for _ in range(each)]
            out.extend(shown(v) for v in await asyncio.gather(*group))
    for ip, tier, bucket, waiters in spec.get("cancel", []):
        # The first request of a key goes to Redis (paused: it cannot answer yet); others
        # wait for it; it is cancelled before the answer.
        await limiters[0].redis.client.execute_command("CLIENT", "PAUSE", "250", "WRITE")
        first = asyncio.create_task(limiters[0].check(ip, tier, bucket))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(limiters[0].check(ip, tier, bucket)) for _ in range(waiters)]
        await asyncio.sleep(0.05)
        first.cancel()
        done = await asyncio.gather(*rest)
        out.extend({"verdict": None if v is None else shown(v)} for v in done)
    # Less this script's own INFO call.
    out.append({"trips": await trips(limiters[0].redis) - before})
    for limiter in limiters:
        await limiter.redis.close()
    print(json.dumps(out))

asyncio.run(main())
"""


def checks(
    redis: Server,
    limits: dict[str, str],
    calls: list[Any],
    concurrent: list[Any] | None = None,
    workers: int = 1,
    cancel: list[Any] | None = None,
) -> list[dict[str, Any]]:
    """Verdicts of `calls` ([ip, tier, bucket, pause first]) in turn, then of `concurrent`
    ([ip, tier, bucket, rounds, requests per worker per round]), each round's requests
    at once on every worker, then for `cancel` ([ip, tier, bucket, waiters]) the verdicts
    of requests that waited for a cancelled one, then {"trips": script calls Redis saw}."""
    spec = json.dumps(
        {
            "redis": redis.url,
            "limits": limits,
            "calls": calls,
            "concurrent": concurrent or [],
            "workers": workers,
            "cancel": cancel or [],
        }
    )
    result: list[dict[str, Any]] = json.loads(run_driver(DRIVER, spec))
    return result[:-1] if concurrent is None and cancel is None else result


def test_a_burst_of_the_limit_then_one_per_interval(redis_server: Server) -> None:
    call = ["10.0.0.1", "basic", f"key:{time.monotonic_ns()}", 0]
    # 2 a second: a burst of 2, then one every 500 ms. After 600 ms exactly one more is
    # allowed, because the refusals consumed nothing.
    later = [*call[:3], 0.6]
    verdicts = checks(
        redis_server, {"rate_limit_tier_basic": "2/second"}, [call] * 4 + [later, call]
    )
    assert [v["allowed"] for v in verdicts] == [True, True, False, False, True, False]
    assert [v["remaining"] for v in verdicts[:2]] == [1, 0]
    assert verdicts[2]["name"] == "basic" and verdicts[2]["limit"] == 2
    assert verdicts[2]["headers"]["Retry-After"] == "1"
    assert verdicts[2]["headers"]["RateLimit-Remaining"] == "0"


def test_every_instance_shares_one_budget(redis_server: Server) -> None:
    call = ["10.0.0.2", "free", f"key:{time.monotonic_ns()}", 0]
    limits = {"rate_limit_tier_free": "1/minute"}
    assert checks(redis_server, limits, [call])[0]["allowed"]
    refused = checks(redis_server, limits, [call])[0]  # another process, as another instance
    assert not refused["allowed"]
    assert 50 <= int(refused["headers"]["Retry-After"]) <= 60


def test_the_per_ip_limit_binds_across_keys(redis_server: Server) -> None:
    stamp = time.monotonic_ns()
    ip = f"10.9.{stamp % 250}.{stamp // 250 % 250}"
    calls = [[ip, "premium", f"key:{stamp}-{n}", 0] for n in range(4)]
    verdicts = checks(redis_server, {"rate_limit_per_ip": "3/minute"}, calls)
    assert [v["allowed"] for v in verdicts] == [True, True, True, False]
    assert verdicts[3]["name"] == "ip"
    assert 1 <= int(verdicts[3]["headers"]["Retry-After"]) <= 20


def test_a_busy_key_is_leased_requests_and_never_gets_more_than_its_limit(
    redis_server: Server,
) -> None:
    # Two workers, 16 requests at once on each, 20 rounds: 640 requests for a limit of
    # 200 a minute. Leases (at most 200 / 20 = 10 requests each) must not let more through
    # than Redis admitted, and may drop at most one unspent lease per worker.
    bucket = f"key:{time.monotonic_ns()}"
    *verdicts, trips = checks(
        redis_server,
        {"rate_limit_tier_premium": "200/minute", "rate_limit_per_ip": "100000/second"},
        [],
        [["10.0.1.1", "premium", bucket, 20, 16]],
        workers=2,
    )
    allowed = sum(v["allowed"] for v in verdicts)
    assert 200 - 2 * 10 <= allowed <= 200
    assert trips["trips"] < len(verdicts) / 3, trips


def test_remaining_counts_down_by_one_through_leases(redis_server: Server) -> None:
    call = ["10.0.1.2", "premium", f"key:{time.monotonic_ns()}", 0]
    *verdicts, trips = checks(
        redis_server,
        {"rate_limit_tier_premium": "1000/minute", "rate_limit_per_ip": "100000/second"},
        [],
        [[*call[:3], 40, 1]],
    )
    assert [v["remaining"] for v in verdicts] == list(range(999, 959, -1))
    assert trips["trips"] <= 10, trips  # 1 + 2 + 4 + 8 + 16 + 32 > 40: about 6 round trips


def test_one_request_per_round_trip_when_leases_are_off(redis_server: Server) -> None:
    call = ["10.0.1.3", "premium", f"key:{time.monotonic_ns()}", 0]
    limits = {"rate_limit_tier_premium": "1000/minute", "rate_limit_lease_max": "1"}
    *verdicts, trips = checks(redis_server, limits, [], [[*call[:3], 10, 4]])
    assert all(v["allowed"] for v in verdicts)
    assert trips["trips"] == len(verdicts) == 40


def test_requests_waiting_for_a_cancelled_round_trip_are_still_checked(
    redis_server: Server,
) -> None:
    # A client that goes away while its key's round trip is out must not let the requests
    # waiting for that answer through unchecked: each asks Redis itself, and the limit (2 a
    # minute) holds.
    bucket = f"key:{time.monotonic_ns()}"
    *verdicts, _ = checks(
        redis_server,
        {"rate_limit_tier_basic": "2/minute"},
        [],
        cancel=[["10.0.1.4", "basic", bucket, 5]],
    )
    assert all(v["verdict"] is not None for v in verdicts), verdicts  # none unchecked
    assert sum(v["verdict"]["allowed"] for v in verdicts) <= 2


MIDDLEWARE_DRIVER = """
import asyncio, json, sys
from refapp import clients
from refapp.ratelimit import RateLimiter, RateLimitMiddleware
from refapp.redisconn import RedisDependency
from refapp.settings import Settings

async def inner(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-inner", b"1")]})
    await send({"type": "http.response.body", "body": b"ok"})

async def call(middleware, listed):
    scope = {"type": "http", "path": "/api/stats", "headers": [], "client": ("10.7.0.1", 1)}
    if listed:  # what the outermost middleware puts there, and adds to the response itself
        scope[clients.RESPONSE_HEADERS] = []
    sent = []
    async def send(message):
        sent.append(message)
    await middleware(scope, None, send)
    start = sent[0]
    names = [k.decode() for k, _ in start["headers"]]
    listed_names = [k.decode() for k, _ in scope.get(clients.RESPONSE_HEADERS, [])]
    return {"status": start["status"], "sent": names, "listed": listed_names}

async def main():
    settings = Settings(redis_url=sys.argv[1], rate_limit_per_ip="2/minute")
    limiter = RateLimiter(settings, RedisDependency(settings))
    middleware = RateLimitMiddleware(inner, limiter)
    out = [await call(middleware, listed) for listed in (False, True, False)]
    await limiter.redis.close()
    print(json.dumps(out))

asyncio.run(main())
"""


def test_the_middleware_adds_headers_itself_or_through_the_outer_list(
    redis_server: Server,
) -> None:
    alone, listed, refused = json.loads(run_driver(MIDDLEWARE_DRIVER, redis_server.url))
    limit_headers = ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"]
    # No outer middleware: its own send wrapper adds them after the inner app's.
    assert alone == {"status": 200, "sent": ["x-inner", *limit_headers], "listed": []}
    # The outer middleware's list: appended there, the response itself left alone.
    assert listed == {"status": 200, "sent": ["x-inner"], "listed": limit_headers}
    # Past the per-IP limit (2 a minute): 429 with Retry-After, the inner app never runs.
    assert refused["status"] == 429 and "retry-after" in refused["sent"], refused
