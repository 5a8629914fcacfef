"""`graceful-shutdown`: SIGTERM one app instance of the running stack while it serves light
load sent straight to it, and count failed requests; then restart it as `stack up` did.

What counts as failed: any 5xx, and any request started before the SIGTERM that did not
get a complete answer. A request started after the SIGTERM may be turned away while the
instance closes its listener (refused or reset before any response): that is what a
draining instance does, and a balancer retries it elsewhere (nginx's proxy_next_upstream).
Each request uses its own connection, so a keep-alive race cannot pass for a failure."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from scalectl.checklist.model import Duration, VerifierOutcome, failed, passed
from scalectl.checklist.verifiers.base import (
    Context,
    Params,
    Verifier,
    app_members,
    require_loopback,
)
from scalectl.errors import ScalectlError
from scalectl.netguard import loopback_client
from scalectl.stack import apikeys
from scalectl.stack.process import member_process, stop, wait_gone


class ShutdownParams(Params):
    """Parameters of the `graceful-shutdown` verifier: which instance, the light load sent to it,
    and how long the stop may take."""

    member: str | None = None  # default: the stack's last app instance
    path: str = Field("/health/ready", pattern=r"^/")  # what the light load requests
    rps: float = Field(20.0, gt=0, le=200)
    clients: int = Field(4, ge=1, le=32)
    warmup: Duration = 1.0  # load before the SIGTERM
    max_stop_seconds: float | None = Field(None, gt=0)  # default: drain time + 5s
    restart: bool = True  # start the instance again afterwards


@dataclass(frozen=True)
class _Request:
    started: float
    ended: float
    outcome: str  # ok | http-5xx | refused | broken
    detail: str


class _Load:
    """`clients` threads pacing requests to one URL at `rps` in total, until `stop` or for at
    most `seconds` worth of requests (bounded in count as well as time)."""

    def __init__(
        self,
        url: str,
        rps: float,
        clients: int,
        timeout: float,
        seconds: float,
        auth: dict[str, str] | None = None,
    ) -> None:
        self.url, self.rps, self.clients, self.timeout = url, rps, clients, timeout
        self.headers = {**(auth or {}), "Connection": "close"}
        self.max_requests = math.ceil(seconds * rps / clients) + 1  # per client
        self.stop = threading.Event()
        self.records: list[_Request] = []
        self.in_flight = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 2)

    def _client(self, index: int) -> None:
        import httpx

        interval = self.clients / self.rps
        next_at = time.monotonic() + index * interval / self.clients
        # No keep-alive: one connection per request.
        limits = httpx.Limits(max_keepalive_connections=0)
        with loopback_client(self.timeout, limits=limits) as client:
            for _ in range(self.max_requests):
                if self.stop.wait(max(0.0, next_at - time.monotonic())):
                    break
                next_at += interval
                with self._lock:
                    self.in_flight += 1
                started = time.monotonic()
                try:
                    response = client.get(self.url, headers=self.headers)
                    outcome = "http-5xx" if response.status_code >= 500 else "ok"
                    detail = str(response.status_code)
                except httpx.ConnectError as exc:
                    outcome, detail = "refused", str(exc) or type(exc).__name__
                except httpx.HTTPError as exc:
                    outcome, detail = "broken", f"{type(exc).__name__}: {exc}"
                finally:
                    with self._lock:
                        self.in_flight -= 1
                self.records.append(_Request(started, time.monotonic(), outcome, detail))


def check_shutdown(params: ShutdownParams, ctx: Context) -> VerifierOutcome:
    """The `graceful-shutdown` item: SIGTERM one app instance under light load sent straight to
    it; no request may fail and it must stop within its drain time; then it is restarted.
    Raises CheckFailed (or another ScalectlError), which fails the item, when no stack runs
    or the instance cannot be found."""
    from scalectl.plan.load import load_plan
    from scalectl.stack.run import restart_member

    state = ctx.stack()
    apps = app_members(state)
    name = params.member or apps[-1].name
    member = next((m for m in apps if m.name == name), None)
    if member is None:
        return failed(
            f"no app instance named {name}; the stack has {', '.join(m.name for m in apps)}"
        )
    proc = member_process(member)
    if proc is None:
        return failed(f"{name} is not running (pid {member.pid} is gone): nothing to shut down")
    plan = load_plan(Path(state.plan), state.profile).plan
    service = plan.services.get(name.rsplit("-", 1)[0])
    drain = service.graceful_shutdown_seconds if service else 30
    limit = params.max_stop_seconds or drain + 5.0
    url = require_loopback(f"{member.url}{params.path}")

    # The load runs through the warm-up, the wait for a request in flight and the stop.
    # The app's /api needs a key: the stack's own (scalectl.stack.apikeys).
    auth = apikeys.auth_headers(ctx.state_dir) if params.path.startswith("/api") else None
    load = _Load(
        url,
        params.rps,
        params.clients,
        timeout=limit + 5,
        seconds=params.warmup + 3.0 + limit,
        auth=auth,
    )
    load.start()
    try:
        load.stop.wait(params.warmup)
        # Signal while a request is in flight (bounded wait), so the drain has work to do.
        deadline = time.monotonic() + 3.0
        for _ in range(6000):  # 3 s of 0.5 ms naps at most
            if load.in_flight or time.monotonic() >= deadline:
                break
            time.sleep(0.0005)
        in_flight = load.in_flight
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # the master only, as a kubelet or `kill` would
        # Exited, not reaped: the stack's init may reap only every second or two.
        exited = not wait_gone([proc], timeout=limit)
        took = time.monotonic() - signalled
    finally:
        load.finish()
    if not exited:
        stop(proc, timeout=5)

    before = [r for r in load.records if r.started < signalled]
    after = [r for r in load.records if r.started >= signalled]
    bad = [r for r in before if r.outcome != "ok"] + [r for r in after if r.outcome == "http-5xx"]
    answered = sum(r.outcome == "ok" for r in after)
    codes = Counter(r.detail for r in load.records if r.outcome == "ok")
    statuses = ", ".join(f"{code}: {n}" for code, n in sorted(codes.items()))
    lines = [
        f"light load on {name} ({url}): {params.clients} clients, {params.rps:g} rps, "
        "a connection per request",
        f"{len(before)} requests started before SIGTERM ({in_flight} in flight when it was sent)",
        f"answers by status: {statuses or 'none'}",
        f"SIGTERM to pid {member.pid}: "
        + (
            f"stopped after {took:.1f}s (limit {limit:g}s)"
            if exited
            else f"still running after {limit:g}s"
        ),
        f"after SIGTERM: {answered} answered, {len(after) - answered} turned away while the "
        "listener closed",
        f"failed requests: {len(bad)}",
    ]
    problems = [
        f"  {r.outcome} {r.detail} ({r.started - signalled:+.2f}s from SIGTERM)" for r in bad[:5]
    ]
    if not exited:
        problems.append(f"{name} did not stop within {limit:g}s of SIGTERM; it was killed")
    if not before:
        problems.append("no request was sent before the SIGTERM: the load never reached it")
    if params.restart:
        started = time.monotonic()
        try:
            fresh = restart_member(ctx.state_dir, name, environ=ctx.environ)
            took = time.monotonic() - started
            lines.append(f"restarted {name} as pid {fresh.pid}, healthy after {took:.1f}s")
        except ScalectlError as exc:
            problems.append(f"restarting {name} failed: {exc.message}")
            problems.extend(exc.lines[-5:])
    return passed(*lines) if not bad and not problems else failed(*lines, *problems)


GRACEFUL_SHUTDOWN = Verifier(
    "graceful-shutdown",
    ShutdownParams,
    check_shutdown,
    "SIGTERM to one app instance under light load sent straight to it: zero failed "
    "requests and a stop within the drain time; then the instance is restarted",
    live=True,
)
