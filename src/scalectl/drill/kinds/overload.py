"""The overload drill: a surge of users without think time on top of the measured load."""

from __future__ import annotations

import re
from collections.abc import Mapping
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
# The failure messages of scenarios/drill.py: "expected 200, got 503 overloaded, ...". Only
# shedding's own 503 counts as shed: a pool timeout or an open breaker answers 503 too,
# whatever the tier.
_SHED = re.compile(r"\bgot 503 overloaded\b")
_LIMITED = re.compile(r"\bgot 429\b")
_UNAVAILABLE = re.compile(r"\bgot 503\b")  # any other 503: a dependency, the pool


@dataclass
class TierCounts:
    """Requests and failures of one tier; of the failures, those shed (503 overloaded),
    those rate limited (429) and other 503s (a dependency or the pool) when the messages
    were kept."""

    requests: int = 0
    failures: int = 0
    shed: int = 0
    limited: int = 0
    unavailable: int = 0

    def add(self, requests: int, failures: int) -> None:
        """Count `requests` more, `failures` of them failed."""
        self.requests += requests
        self.failures += failures

    def add_errors(self, errors: Mapping[str, int]) -> None:
        """Count the shed and rate-limited answers among failure `errors` (message: count)."""
        for message, count in errors.items():
            if _SHED.search(message):
                self.shed += count
            elif _LIMITED.search(message):
                self.limited += count
            elif _UNAVAILABLE.search(message):
                self.unavailable += count

    @property
    def refused(self) -> float | None:
        """The share refused; None without requests."""
        return self.failures / self.requests if self.requests else None

    def share(self, count: int) -> float | None:
        """`count` as a share of the requests; None without requests."""
        return count / self.requests if self.requests else None


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
            tier = surge.tier(e.key)
            tier.add(e.requests, e.failures)
            tier.add_errors(e.errors)
        ctx.timeline.mark(
            "fault_end",
            f"surge over: {total.requests} requests at {total.rps:.0f}/s, "
            f"{total.error_rate:.1%} refused",
        )

    def measure(ctx: DrillContext, m: Measured) -> list[Figure]:
        # Priority is judged on what shedding refused (503) of the surge's requests, which
        # number thousands per tier. A 429 is a rate limit, not shedding: the per-IP limit
        # does not look at the tier (all loopback load is one address), and a fast app can
        # reach it; so 429s are counted apart, as information.
        free_shed = surge.free.share(surge.free.shed)
        premium_shed = surge.premium.share(surge.premium.shed)
        shed = bool(free_shed) or bool(premium_shed)
        ratio: float | None = None  # premium's shed share relative to free's
        if free_shed and premium_shed is not None:
            ratio = round(premium_shed / free_shed, 4)
        elif premium_shed:  # premium shed while free was not: priority inverted
            ratio = 1.0
        # Everything each tier saw fail: the surge and the measured load during it.
        tiers = _Surge(
            TierCounts(surge.free.requests, surge.free.failures),
            TierCounts(surge.premium.requests, surge.premium.failures),
        )
        tiers.free.add(*fig.counts(m, ("during",), _is_free))
        tiers.premium.add(*fig.counts(m, ("during",), _is_premium))
        during = fig.probes_during(m)
        return [
            Figure("free_refused", _round(tiers.free.refused), "ratio", detail=f"of "
                   f"{tiers.free.requests} free-tier requests during the surge (any failure)"),
            Figure("premium_refused", _round(tiers.premium.refused), "ratio", detail=f"of "
                   f"{tiers.premium.requests} premium requests during the surge (any failure)"),
            Figure("free_shed", _round(free_shed), "ratio", detail=f"503 of the surge's "
                   f"{surge.free.requests} free-tier requests"),
            Figure("premium_shed", _round(premium_shed), "ratio", detail=f"503 of the "
                   f"surge's {surge.premium.requests} premium requests"),
            Figure("rate_limited", surge.free.limited + surge.premium.limited, "requests",
                   detail=f"429 in the surge: free {surge.free.limited}, premium "
                   f"{surge.premium.limited} (rate limits, not shedding)"),
            Figure("unavailable", surge.free.unavailable + surge.premium.unavailable,
                   "requests", detail=f"other 503s in the surge (a dependency, the pool): "
                   f"free {surge.free.unavailable}, premium {surge.premium.unavailable}"),
            Figure("premium_vs_free_refused", ratio, "ratio", "<=", PRIORITY_RATIO,
                   "premium's shed share (503) over free's: low priority must be shed "
                   "first, premium at most half as often"
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
