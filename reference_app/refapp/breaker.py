"""A small asyncio circuit breaker with a background recovery probe.

Why not `purgatory`: it is not in the stack extra, and we need two things it does not give
directly: (1) requests must fail fast while the dependency is down, so the half-open trial
is a background probe (a fresh connection and a ping) instead of a live request that could
hang for a timeout; (2) a hook on recovery, so the PostgreSQL pool can be replaced instead of
waiting out its reconnect backoff (psycopg_pool retries after 1, 2, 4, ... seconds). The
state is exported as `circuit_breaker_state{dependency}` (0 closed, 1 half-open, 2 open).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable

from refapp.metrics import BREAKER_STATE

log = logging.getLogger(__name__)


class State(enum.IntEnum):
    # Ordered by severity, so max() across processes reads as "the worst one" and the
    # dashboard's value mapping (scalectl plan's Grafana template) applies as is.
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitOpenError(Exception):
    """The dependency is known to be down: answer 503 without trying it."""

    def __init__(self, dependency: str, retry_after: int) -> None:
        super().__init__(f"{dependency} is unavailable")
        self.dependency = dependency
        self.retry_after = retry_after


class CircuitBreaker:
    def __init__(
        self,
        dependency: str,
        *,
        failure_threshold: int,
        reset_seconds: float,
        probe: Callable[[], Awaitable[None]],
        probe_timeout: float = 1.0,
        on_recover: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.dependency = dependency
        self.failure_threshold = max(1, failure_threshold)
        self.reset_seconds = reset_seconds
        self._probe = probe
        self._probe_timeout = probe_timeout
        self._on_recover = on_recover
        self._state = State.CLOSED
        self._failures = 0
        self.trips = 0  # times opened: lets callers notice an outage they did not see
        self._next_probe_at = 0.0
        self._opened = asyncio.Event()
        self._recovery: asyncio.Task[None] | None = None
        BREAKER_STATE.labels(dependency).set(State.CLOSED)

    @property
    def state(self) -> State:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is State.CLOSED

    def retry_after(self) -> int:
        """Whole seconds until the next recovery probe, at least 1 (for Retry-After)."""
        return max(1, math.ceil(self._next_probe_at - time.monotonic()))

    def check(self) -> None:
        if self._state is not State.CLOSED:
            raise CircuitOpenError(self.dependency, self.retry_after())

    def record_success(self) -> None:
        if self._state is State.CLOSED:
            self._failures = 0

    def record_failure(self, exc: BaseException | None = None) -> None:
        if self._state is not State.CLOSED:
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self.trip(exc)

    def trip(self, exc: BaseException | None = None) -> None:
        """Open now (also used when a probe proves the dependency is down)."""
        if self._state is not State.CLOSED:
            return
        log.warning(
            "circuit opened",
            extra={"dependency": self.dependency, "error": repr(exc) if exc else None},
        )
        self._set(State.OPEN)
        self.trips += 1
        self._next_probe_at = time.monotonic() + self.reset_seconds
        self._opened.set()
        self._recovery = asyncio.create_task(self._recover(), name=f"{self.dependency}-recovery")

    async def wait_open(self) -> None:
        await self._opened.wait()

    async def _recover(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self._next_probe_at - time.monotonic()))
            self._set(State.HALF_OPEN)
            try:
                async with asyncio.timeout(self._probe_timeout):
                    await self._probe()
                if self._on_recover is not None:
                    await self._on_recover()
            except Exception as exc:
                log.info("probe failed", extra={"dependency": self.dependency, "error": repr(exc)})
                self._set(State.OPEN)
                self._next_probe_at = time.monotonic() + self.reset_seconds
                continue
            log.warning("circuit closed", extra={"dependency": self.dependency})
            self._failures = 0
            self._opened = asyncio.Event()
            self._set(State.CLOSED)
            self._recovery = None
            return

    def _set(self, state: State) -> None:
        self._state = state
        BREAKER_STATE.labels(self.dependency).set(state)

    async def aclose(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
