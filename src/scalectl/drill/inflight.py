"""Slow requests held in flight while a fault hits: their answers say whether in-flight work
survived it (worker-kill, graceful-shutdown)."""

from __future__ import annotations

import threading
import time

import httpx

from scalectl.netguard import loopback_client

SLOW_MS = 2000  # how long the app holds each request (its /api/debug/sleep)


class HeldRequests:
    """`count` slow requests (the stack's /api/debug/sleep) sent to `base`, each from a
    thread of its own, started by the constructor (which waits until the app has them)."""

    def __init__(self, base: str, count: int, auth: dict[str, str]) -> None:
        self.count = count
        self.auth = auth  # /api needs a key
        self.statuses: list[int | str | None] = [None] * count
        self.threads = [
            threading.Thread(target=self._one, args=(base, i), daemon=True) for i in range(count)
        ]
        for thread in self.threads:
            thread.start()
        time.sleep(0.5)  # accepted and sleeping in the app

    def _one(self, base: str, index: int) -> None:
        try:
            with loopback_client(SLOW_MS / 1000 + 20) as client:
                response = client.get(
                    f"{base}/api/debug/sleep", params={"ms": SLOW_MS}, headers=self.auth
                )
            self.statuses[index] = response.status_code
        except httpx.HTTPError as exc:
            self.statuses[index] = type(exc).__name__

    def finish(self) -> int:
        """Wait (bounded) for every answer; returns how many came back 200."""
        for thread in self.threads:
            thread.join(SLOW_MS / 1000 + 25)
        return sum(s == 200 for s in self.statuses)

    def detail(self) -> str:
        """The answers by status or error, for a figure's detail: '200 x3, ReadError x1'."""
        tally: dict[str, int] = {}
        for s in self.statuses:
            tally[str(s)] = tally.get(str(s), 0) + 1
        return ", ".join(f"{k} x{v}" for k, v in sorted(tally.items()))
