"""The cache's fill guard against a real Redis: a reader whose load overlapped a write never
stores what it read, and a reader that started after the write stores at once (before, the
write's marker refused every fill for 2 s, so a hot key that had just changed was read from
PostgreSQL by every request in that window). Run in a child process: refapp's metrics need
their multiprocess directory before import, as under gunicorn."""

from __future__ import annotations

import json

from scalectl.stack.servers import Server
from tests.reference_app.cluster import run_driver

DRIVER = """
import asyncio, json, sys, uuid
from refapp.cache import Cache
from refapp.cachekeys import Invalidation
from refapp.redisconn import RedisDependency
from refapp.settings import Settings

async def main():
    settings = Settings(redis_url=sys.argv[1])
    redis = RedisDependency(settings)
    cache = Cache(settings, redis)  # not subscribed: L1 unused, every read asks Redis
    key = f"refapp:sub:{uuid.uuid4()}"
    loads = []
    started, release = asyncio.Event(), asyncio.Event()

    async def old_row():
        loads.append("old")
        started.set()
        await release.wait()
        return {"title": "old"}

    async def new_row():
        loads.append("new")
        return {"title": "new"}

    overlapping = asyncio.create_task(cache.get_or_load(key, 60, old_row))
    await started.wait()
    await cache.invalidate(Invalidation(keys=(key,)))  # the write commits meanwhile
    release.set()
    out = {"overlapping": await overlapping, "stored_after_overlap": await redis.client.get(key)}
    out["after_write"] = await cache.get_or_load(key, 60, new_row)
    out["stored_after_write"] = await redis.client.get(key)
    out["next"] = await cache.get_or_load(key, 60, new_row)
    out["loads"] = loads
    await redis.close()
    print(json.dumps(out, default=lambda b: b.decode()))

asyncio.run(main())
"""


def test_a_fill_is_refused_across_a_write_and_allowed_after_it(redis_server: Server) -> None:
    out = json.loads(run_driver(DRIVER, redis_server.url))
    assert out["overlapping"] == {"title": "old"}  # the caller still gets what it read
    assert out["stored_after_overlap"] is None  # but Redis does not keep it
    assert out["after_write"] == {"title": "new"}
    assert json.loads(out["stored_after_write"]) == {"title": "new"}  # within the marker's 2 s
    assert out["next"] == {"title": "new"}
    assert out["loads"] == ["old", "new"]  # the third read came from Redis
