"""The per-process dependencies, built when the app is created (no I/O) and started and
stopped by its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psutil
from fastapi import Request

from refapp import store
from refapp.auth import KeyResolver, RedisBackup, database_lookup
from refapp.batching import Coalescer
from refapp.cache import Cache
from refapp.db import Database
from refapp.metrics import ProcessSampler
from refapp.principal import KeyCache
from refapp.ratelimit import RateLimiter
from refapp.redisconn import RedisDependency
from refapp.settings import Settings
from refapp.shedding import LoadMonitor
from refapp.store import NewSubmission

log = logging.getLogger(__name__)


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings)
        self.redis = RedisDependency(settings)
        self.cache = Cache(settings, self.redis)
        self.new_submissions: Coalescer[NewSubmission, dict[str, Any]] = Coalescer(
            lambda rows: self.db.write(lambda db: store.create_submissions(db, rows)),
            settings.database_write_batch_max,
        )
        self.limiter = RateLimiter(settings, self.redis)
        self.keys = KeyResolver(
            database_lookup(self.db.read),
            KeyCache(
                settings.api_key_cache_ttl,
                settings.api_key_cache_max,
                settings.api_key_negative_ttl,
            ),
            RedisBackup(self.redis, settings.api_key_outage_ttl),
        )
        self.monitor = LoadMonitor(settings)
        self._sampler = ProcessSampler()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        psutil.cpu_percent(None)  # prime: the first reading of an interval is meaningless
        self.monitor.start()
        self.cache.start()
        self._tasks.append(asyncio.create_task(self._sample_metrics(), name="metrics-sampler"))
        await self.db.open()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.monitor.aclose()
        await self.cache.aclose()
        await self.db.close()
        await self.redis.close()

    def sample(self) -> None:
        self._sampler.sample()
        self.db.sample_pool_metrics()

    async def _sample_metrics(self) -> None:
        # Each worker keeps its own files current; a scrape reads every worker's, and the
        # one answering samples itself again just before (see health.metrics).
        while True:
            try:
                self.sample()
            except Exception:
                log.exception("metrics sampling failed")
            await asyncio.sleep(1)


async def get(request: Request) -> Services:
    """The app's services. async: FastAPI runs a plain `def` dependency in its thread pool,
    a hand-off per request for what is a dictionary lookup."""
    services: Services = request.app.state.services
    return services
