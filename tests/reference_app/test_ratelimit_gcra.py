"""The limiter's arithmetic against a real Redis: GCRA, both limits in one script, a refusal
consumes nothing, and every app instance shares the same budget (issue 13: one round trip
per request instead of four). Run in a child process: refapp's metrics need their
multiprocess directory before import, as under gunicorn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scalectl.stack.servers import Server

APP_DIR = Path(__file__).resolve().parents[2] / "reference_app"
DRIVER = """
import asyncio, json, sys, time
from refapp.ratelimit import RateLimiter
from refapp.redisconn import RedisDependency
from refapp.settings import Settings

async def main():
    spec = json.loads(sys.argv[1])
    settings = Settings(redis_url=spec["redis"], **spec["limits"])
    limiter = RateLimiter(settings, RedisDependency(settings))
    out = []
    for ip, tier, bucket, pause in spec["calls"]:
        time.sleep(pause)
        v = await limiter.check(ip, tier, bucket)
        out.append({"allowed": v.allowed, "name": v.name, "limit": v.limit,
                    "remaining": v.remaining, "headers": v.headers()})
    await limiter.redis.close()
    print(json.dumps(out))

asyncio.run(main())
"""


def checks(redis: Server, limits: dict[str, str], calls: list[Any]) -> list[dict[str, Any]]:
    spec = json.dumps({"redis": redis.url, "limits": limits, "calls": calls})
    with tempfile.TemporaryDirectory() as metrics:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics}
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, spec],
            cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


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
