"""The overload drill: a surge of users without think time on top of the measured load."""

from __future__ import annotations

from dataclasses import dataclass, field

from scalectl.drill import figures as fig
from scalectl.drill.engine import DrillContext, Measured, Spec
from scalectl.drill.kinds.base import DrillGates, DrillKind, DrillOptions, recovery_figure
from scalectl.drill.model import Figure
from scalectl.drill.restore import restore_touched
from scalectl.drill.traffic import Load, surge_config

SURGE_SECONDS = 10.0
PRIORITY_RATIO = 0.5  # premium may be refused at most half as often as free
FREE = " [free]"  # the suffix of free-tier request names (scenarios/drill.py)


@dataclass
class TierCounts:
    """Requests and failures of one tier."""

    requests: int = 0
    failures: int = 0

    def add(self, requests: int, failures: int) -> None:
        """Count `requests` more, `failures` of them failed."""
        self.requests += requests
        self.failures += failures

    @property
    def refused(self) -> float | None:
        """The share refused; None without requests."""
        return self.failures / self.requests if self.requests else None


@dataclass
class _Surge:
    """What the surge saw per tier, for overload's measure."""

    free: TierCounts = field(default_factory=TierCounts)
    premium: TierCounts = field(default_factory=TierCounts)

    def tier(self, key: str) -> TierCounts:
        """The counts of the tier the request name `key` belongs to."""
        return self.free if _is_free(key) else self.premium


def _is_free(key: str) -> bool:
    return key.endswith(FREE)


def _is_premium(key: str) -> bool:
    return not key.endswith(FREE)


def overload(gates: DrillGates, options: DrillOptions) -> Spec:
    """A surge of `options.surge_users` users without think time (a second Locust run, the
    fault) on top of the measured load, half of it free tier: the free tier must be shed
    before premium, health must keep answering, and failures must stop once the surge
    ends."""
    surge_users, surge_seconds = options.surge_users, SURGE_SECONDS
    surge = _Surge()

    def inject(ctx: DrillContext) -> None:
        from scalectl.loadtest import runner

        config = surge_config(ctx.url, surge_users, surge_seconds, ctx.locust_env)
        ctx.timeline.mark(
            "fault_start", f"surge: {surge_users} users without think time for {surge_seconds:g} s"
        )
        outcome = runner.run(config, should_stop=ctx.stopping.is_set)
        total = outcome.results.total
        for e in outcome.results.endpoints:
            surge.tier(e.key).add(e.requests, e.failures)
        ctx.timeline.mark(
            "fault_end",
            f"surge over: {total.requests} requests at {total.rps:.0f}/s, "
            f"{total.error_rate:.1%} refused",
        )

    def measure(ctx: DrillContext, m: Measured) -> list[Figure]:
        # What each tier saw: the measured load during the surge and the surge itself (which
        # has thousands of requests per tier, so a difference is not noise).
        tiers = _Surge(
            TierCounts(surge.free.requests, surge.free.failures),
            TierCounts(surge.premium.requests, surge.premium.failures),
        )
        tiers.free.add(*fig.counts(m, ("during",), _is_free))
        tiers.premium.add(*fig.counts(m, ("during",), _is_premium))
        free, premium = tiers.free.refused, tiers.premium.refused
        shed = bool(free) or bool(premium)
        ratio: float | None = None  # premium's refused share relative to free's
        if free and premium is not None:
            ratio = round(premium / free, 4)
        elif premium:  # premium refused while free was not: priority inverted
            ratio = 1.0
        during = fig.probes_during(m)
        return [
            Figure("free_refused", _round(free), "ratio", detail=f"of {tiers.free.requests} "
                   "free-tier requests during the surge"),
            Figure("premium_refused", _round(premium), "ratio", detail=f"of "
                   f"{tiers.premium.requests} premium requests during the surge"),
            Figure("premium_vs_free_refused", ratio, "ratio", "<=", PRIORITY_RATIO,
                   "premium's refused share over free's: low priority must be shed first, "
                   "premium at most half as often"
                   + ("" if shed else " (inconclusive: the surge shed nothing; raise --surge)")),
            Figure("health_answered", fig.answered(during), "ratio", ">=", 1.0,
                   f"health probes answered within 2 s during the surge: "
                   f"{fig.health_seen(during)}"),
            recovery_figure(m, gates, "from the surge's end"),
        ]  # fmt: skip

    return Spec(
        "overload",
        f"a surge of {surge_users} users without think time for {surge_seconds:g} s: free "
        "tier shed first, health answers, recovery after",
        inject,
        restore_touched,  # nothing to restore: the surge ends by itself (bounded run time)
        measure,
        load=Load(rate=40, users=40, reads=9, writes=1, free_share=0.5),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


OVERLOAD = DrillKind("overload", overload)
