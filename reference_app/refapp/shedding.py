"""Load shedding: admission control per worker process. A request past its tier's share of
the worker is refused with 503 + Retry-After before work is spent on it: only its API key
has been resolved (the tier comes from it, from a per-worker cache); no body is read, no
rate-limit round trip or query made. Cheapest customers are refused first.

Pressure is the worse of two ratios: requests in flight over SHED_MAX_IN_FLIGHT, and memory
use (the container's cgroup usage against its limit; without a cgroup limit, the machine's)
over SHED_MAX_MEMORY_PERCENT. Free-tier requests are refused from pressure 1.0, basic from
1.5, premium from 2.0, so 2 x SHED_MAX_IN_FLIGHT is the most a worker holds and premium keeps
half of it to itself.

Neither signal depends on how fast the machine is. Event-loop lag did, and shedding by it
failed: when the CPU is saturated (by the load generator or a job worker on the same cores
as much as by this worker), refusing free-tier requests does not bring the lag down, so it
rose through every tier's threshold at once and premium was refused as often as free. The
count in flight is what admission itself controls, so the tiers' thresholds stay apart. The
lag is still measured, for its metric and /health/system.

Health and metrics are never shed: the orchestrator must see the pressure, not a dead pod."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import psutil
from starlette.types import ASGIApp, Receive, Scope, Send

from refapp import clients
from refapp.errors import send_json
from refapp.metrics import EVENT_LOOP_LAG, HTTP_IN_FLIGHT, LOAD_SHED
from refapp.principal import caller as caller_of
from refapp.settings import Settings

# The pressure from which each tier is refused (docs/reference-app.md, Load shedding).
SHED_AT = {"free": 1.0, "basic": 1.5, "premium": 2.0}
LAG_INTERVAL = 0.1  # seconds between loop-lag samples
# Weight of the newest sample in the smoothed lag (an EWMA with a ~0.3 s time constant):
# raw samples are spiky, and /health/system warns on this one.
LAG_WEIGHT = 0.3
_CGROUP = Path("/sys/fs/cgroup")


def memory_percent() -> float:
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            current = int((_CGROUP / "memory.current").read_text())
            return 100.0 * current / int(limit)
    except (OSError, ValueError):
        pass
    return float(psutil.virtual_memory().percent)


class LoadMonitor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.in_flight = 0
        self.loop_lag = 0.0  # seconds, smoothed (LAG_WEIGHT)
        self.memory_percent = 0.0
        self._task: asyncio.Task[None] | None = None

    def pressure(self) -> float:
        """The worse of requests in flight over SHED_MAX_IN_FLIGHT and memory use over
        SHED_MAX_MEMORY_PERCENT: 1.0 where the free tier starts being refused."""
        s = self.settings
        return max(
            self.in_flight / max(1, s.shed_max_in_flight),
            self.memory_percent / max(1e-9, s.shed_max_memory_percent),
        )

    def should_shed(self, tier: str) -> bool:
        """Whether a request of `tier` must be refused now (an unknown tier counts as free)."""
        return self.pressure() >= SHED_AT.get(tier, SHED_AT["free"])

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample(), name="load-monitor")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        ticks = 0
        while True:
            started = loop.time()
            await asyncio.sleep(LAG_INTERVAL)
            sample = max(0.0, loop.time() - started - LAG_INTERVAL)
            self.loop_lag += LAG_WEIGHT * (sample - self.loop_lag)
            EVENT_LOOP_LAG.set(self.loop_lag)
            # Sampled, not written on every request: two shared-memory writes per request
            # for a gauge that a scrape reads every few seconds.
            HTTP_IN_FLIGHT.set(self.in_flight)
            if ticks % 10 == 0:  # memory once a second: it moves slowly
                self.memory_percent = memory_percent()
            ticks += 1


class LoadShedMiddleware:
    def __init__(self, app: ASGIApp, monitor: LoadMonitor) -> None:
        self.app = app
        self.monitor = monitor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or clients.is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        caller = caller_of(scope)  # the key's tier; never a header
        tier = caller.tier if caller else clients.DEFAULT_TIER
        if self.monitor.should_shed(tier):
            LOAD_SHED.labels(tier).inc()
            await send_json(send, 503, {"detail": "overloaded, retry later"}, {"Retry-After": "1"})
            return
        self.monitor.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.monitor.in_flight -= 1
