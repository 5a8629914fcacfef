"""Drills that make a dependency slow rather than down: slow-redis (the cache) and
slow-postgres (the database), through a delaying proxy on loopback
(scalectl.drill.delayproxy).

The stack's normal path has no proxy: before the load starts, the drill restarts each app
instance (drained from nginx, as a rolling restart) with its Redis or PostgreSQL URL
pointing at the proxy, which passes data through undelayed; the baseline is measured that
way, so the comparison with the fault isolates the delay. The restore restarts the
instances with their own URLs again and only then stops the proxy. The proxy stops by
itself after the load's bound plus the restore's, the delay at the fault's end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from scalectl.drill import faults
from scalectl.drill import figures as fig
from scalectl.drill.delayproxy import DelayProxy
from scalectl.drill.engine import SETTLE_SECONDS, DrillContext, Measured, Spec
from scalectl.drill.kinds.base import (
    DrillGates,
    DrillKind,
    DrillOptions,
    app_names,
    recovery_figure,
)
from scalectl.drill.model import Figure
from scalectl.drill.restore import RESTART_LOCK, restart
from scalectl.drill.traffic import MAX_LOAD_SECONDS, Load
from scalectl.errors import InputError
from scalectl.stack.state import StackState

# The restore restarts every app instance once the load is over; each may take a while
# to drain and become healthy again (restart_member waits up to 60 s).
RESTORE_BOUND_SECONDS = 300


@dataclass(frozen=True)
class Dependency:
    """One dependency the app instances reach by URL: the stack member that serves it and
    the variable that names it in their environment."""

    member: str  # redis | postgres
    state_url: str  # its key in state.urls
    env: str  # REDIS_URL | DATABASE_URL
    with_password: bool  # the URL carries its password (Redis), else a file does
    default_p95_ms: float  # --max-slow-p95 when not given
    load: Load


def _requests(key: str) -> bool:
    return key.split(" ", 1)[0] != "JOB"  # as figures.counts: HTTP requests only


def _via(url: str, port: int) -> str:
    """`url` with its host and port replaced by the proxy's (user info kept)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class _Slowed:
    """One run's proxy and the instances pointed at it, for the inject and the restore."""

    dependency: Dependency
    delay: float
    seconds: float
    proxy: DelayProxy | None = None
    pointed: list[str] = field(default_factory=list)  # app instances using the proxy

    def setup(self, ctx: DrillContext) -> None:
        from scalectl.stack import credentials

        target = faults.member(ctx, self.dependency.member)
        host = urlsplit(target.url or "").hostname
        if host is None or target.port is None:
            raise InputError(f"{target.name}: state.json records no address for it")
        lifetime = MAX_LOAD_SECONDS + SETTLE_SECONDS + RESTORE_BOUND_SECONDS
        self.proxy = DelayProxy(host, target.port, lifetime=lifetime)
        port = self.proxy.start()
        ctx.timeline.note(f"delay proxy on 127.0.0.1:{port} in front of {target.name}")
        root = Path(ctx.state.state_dir)
        key = self.dependency.state_url
        url = (
            credentials.authenticated_url(root, ctx.state.urls, key)
            if self.dependency.with_password
            else ctx.state.urls[key]
        )
        overrides = {self.dependency.env: _via(url, port)}
        for m in faults.members_of_kind(ctx, "app"):
            ctx.touch(m.name)
            self.pointed.append(m.name)
            restart(ctx, m.name, overrides=overrides)
        ctx.timeline.note(f"app instances reach {target.name} through the proxy")

    def inject(self, ctx: DrillContext) -> None:
        assert self.proxy is not None
        name = self.dependency.member
        slower = f"{self.delay * 1000:g} ms per round trip"
        ctx.timeline.mark("fault_start", f"{name} slowed by {slower}")
        self.proxy.slow_for(self.delay, self.seconds)
        ctx.wait(self.seconds)
        self.proxy.pass_through()
        ctx.timeline.mark("fault_end", f"{name} at full speed again")

    def restore(self, ctx: DrillContext) -> None:
        try:
            with RESTART_LOCK:
                while self.pointed:
                    name = self.pointed[0]
                    ctx.timeline.note(f"pointing {name} at {self.dependency.member} directly")
                    restart(ctx, name)
                    self.pointed.pop(0)
        finally:
            # An instance that could not be pointed back keeps the proxy while scalectl
            # runs (its thread ends with the process, or at its lifetime).
            if self.proxy is not None and not self.pointed:
                self.proxy.stop()


def _slow(dependency: Dependency) -> DrillKind:
    name = f"slow-{dependency.member}"

    def requires(state: StackState, options: DrillOptions) -> None:
        if state.member(dependency.member) is None or dependency.state_url not in state.urls:
            raise InputError(f"{name}: the stack has no {dependency.member} to slow down")
        if not app_names(state):
            raise InputError(f"{name}: the stack has no app instance to put behind the proxy")

    def build(gates: DrillGates, options: DrillOptions) -> Spec:
        seconds, delay = options.outage_seconds, options.delay_seconds
        slowed = _Slowed(dependency, delay, seconds)
        ceiling = gates.max_slow_p95_ms or dependency.default_p95_ms

        def measure(ctx: DrillContext, m: Measured) -> list[Figure]:
            during = fig.probes_during(m)
            counts = slowed.proxy.counts if slowed.proxy is not None else None
            # The worst second can only pass if there were seconds to be slow in: a load
            # generator starved of CPU while the fault was on leaves too few to judge.
            measured = sum(1 for s in m.seconds if s.phase == "during" and s.requests)
            enough = max(2, math.ceil(seconds / 2))
            worst = fig.worst_p95(m, "during", _requests) if measured >= enough else None
            worst_detail = (
                "worst per-second p95 of an endpoint while slowed: requests fail "
                "fast or go on without it rather than queue"
            )
            if worst is None:
                worst_detail += f" (only {measured} of at least {enough} seconds measured)"
            return [
                Figure("availability_during", fig.availability(m), "ratio", ">=",
                       gates.min_availability,
                       f"requests answered as expected while {dependency.member} was slow"),
                Figure("p95_before_ms", fig.median_p95(m, "before"), "ms",
                       detail="median per-second p95 before the fault (through the proxy, "
                       "undelayed)"),
                Figure("p95_during_ms", fig.median_p95(m, "during"), "ms",
                       detail="median per-second p95 while slowed"),
                Figure("worst_p95_during_ms", worst, "ms", "<=", ceiling, worst_detail),
                recovery_figure(m, gates, f"from {dependency.member} at full speed"),
                Figure("health_answered", fig.answered(during), "ratio", ">=", 1.0,
                       f"health probes answered while slowed: {fig.health_seen(during)}"),
                Figure("proxy_connections_peak",
                       None if counts is None else counts.peak_open, "connections",
                       detail=f"most connections open at once to {dependency.member} "
                       f"({counts.refused if counts else 0} refused)"),
            ]  # fmt: skip

        return Spec(
            name,
            f"delay every round trip to {dependency.member} by {delay * 1000:g} ms for "
            f"{seconds:g} s: requests must still be answered, without queueing",
            slowed.inject,
            slowed.restore,
            measure,
            load=dependency.load,
            fault_seconds=seconds,
            setup=slowed.setup,
        )

    return DrillKind(name, build, requires)


SLOW_REDIS = _slow(
    Dependency("redis", "redis", "REDIS_URL", True, 1500.0,
               Load(rate=40, users=40, reads=19, writes=1))
)  # fmt: skip
SLOW_POSTGRES = _slow(
    Dependency("postgres", "database", "DATABASE_URL", False, 3000.0,
               Load(rate=40, users=40, reads=4, writes=1, pool=10))
)  # fmt: skip
