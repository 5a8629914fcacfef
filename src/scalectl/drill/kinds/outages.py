"""Drills that take a dependency away for a while under load: redis-outage (the cache) and
postgres-outage (the database)."""

from __future__ import annotations

import signal

from scalectl.drill import faults
from scalectl.drill import figures as fig
from scalectl.drill.database import lost_writes
from scalectl.drill.engine import DrillContext, Fault, Measured, Spec
from scalectl.drill.kinds.base import DrillGates, DrillKind, DrillOptions, recovery_figure
from scalectl.drill.model import Figure
from scalectl.drill.restore import restore_touched, start_again
from scalectl.drill.traffic import Load


def _outage(name: str, sig: int, seconds: float) -> Fault:
    """Stop the member `name` with `sig`, keep it down for `seconds`, start it again."""

    def inject(ctx: DrillContext) -> None:
        proc = faults.process(ctx, name)
        ctx.touch(name)
        ctx.timeline.mark("fault_start", f"stopping {name}")
        faults.stop_group(proc, sig, timeout=20)
        ctx.timeline.note(f"{name} stopped")
        ctx.wait(seconds)
        start_again(ctx, name)
        ctx.timeline.mark("fault_end", f"{name} back")

    return inject


# --- redis-outage -------------------------------------------------------------------------


def redis_outage(gates: DrillGates, options: DrillOptions) -> Spec:
    """Stop the cache Redis for `options.outage_seconds` under read-heavy load: requests
    must still be answered, health must degrade (not fail), and the service must recover."""
    outage = options.outage_seconds

    def measure(ctx: DrillContext, m: Measured) -> list[Figure]:
        during = fig.probes_during(m)
        return [
            Figure("availability_during", fig.availability(m), "ratio", ">=",
                   gates.min_availability,
                   "requests answered as expected while the cache Redis was down"),
            recovery_figure(m, gates, "from Redis back"),
            Figure("health_answered", fig.answered(during), "ratio", ">=", 1.0,
                   f"health probes answered during the outage: {fig.health_seen(during)}"),
        ]  # fmt: skip

    return Spec(
        "redis-outage",
        f"stop the cache Redis for {outage:g} s under read-heavy load",
        _outage("redis", signal.SIGTERM, outage),
        restore_touched,
        measure,
        load=Load(rate=40, users=40, reads=19, writes=1),
        fault_seconds=outage,
    )


# --- postgres-outage ----------------------------------------------------------------------


def _reads(key: str) -> bool:
    return key.startswith("GET ")


def _writes(key: str) -> bool:
    return key.startswith("POST ")


def postgres_outage(gates: DrillGates, options: DrillOptions) -> Spec:
    """Stop PostgreSQL for `options.outage_seconds`: cached reads must hold, writes must
    fail fast, and no write answered 202 may be missing afterwards."""
    outage = options.outage_seconds

    def measure(ctx: DrillContext, m: Measured) -> list[Figure]:
        lost, acked = lost_writes(ctx)
        return [
            Figure("cached_read_availability", fig.availability(m, keys=_reads), "ratio", ">=",
                   gates.min_availability,
                   "cached reads answered 200 while PostgreSQL was down"),
            Figure("write_fail_p95_ms", fig.worst_p95(m, "during", _writes), "ms", "<=",
                   gates.max_fail_fast_ms, "worst per-second p95 of writes during the outage"),
            Figure("lost_acknowledged_writes", lost, "writes", "<=", 0,
                   f"of {acked} answered 202, missing from PostgreSQL afterwards"),
            recovery_figure(m, gates, "from PostgreSQL back"),
        ]  # fmt: skip

    return Spec(
        "postgres-outage",
        f"stop PostgreSQL for {outage:g} s: cached reads hold, writes fail fast, no "
        "acknowledged write is lost",
        _outage("postgres", signal.SIGINT, outage),
        restore_touched,
        measure,
        load=Load(rate=40, users=40, reads=4, writes=1, pool=10),
        # The hot documents' jobs finish within ~10 s of the seeding and each completion
        # invalidates its cache entry; reads refill it. Fault only once that has settled,
        # so "cached reads" are cached (seen in this drill's first runs).
        before_seconds=15.0,
        fault_seconds=outage,
    )


REDIS_OUTAGE = DrillKind("redis-outage", redis_outage)
POSTGRES_OUTAGE = DrillKind("postgres-outage", postgres_outage)
