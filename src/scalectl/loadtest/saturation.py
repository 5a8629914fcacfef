"""Which resource of the target saturated first, read from its own Prometheus `/metrics`
while `scalectl loadtest capacity` steps the rate (docs/sizing.md, "Measuring capacity").

Each step scrapes the page about once a second: a gauge is averaged over the step, a
counter becomes its increase per second. A signal saturates at a step when its figure
reaches its limit (SIGNALS); the first step, in rising rate, where any does names it. The
series are the reference app's (reference_app/refapp/metrics.py); a target without
/metrics, or without any of them, leaves the answer "unknown".
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from scalectl.exposition import Exposition, ExpositionError, parse

UNKNOWN = "unknown"
SCRAPE_TIMEOUT = 0.5  # seconds: a scrape must not hold up the watch over the run


@dataclass(frozen=True)
class Signal:
    """One saturation signal: a series, how a step's samples become one figure, and the
    figure at which the resource counts as saturated."""

    name: str  # as reported: "cpu", "pool wait", ...
    series: str
    kind: Literal["gauge", "counter"]  # gauge: mean over the step; counter: increase/s
    limit: float  # saturated at or above this (cores for cpu: set per run)
    meaning: str


SIGNALS: tuple[Signal, ...] = (
    Signal("cpu", "process_cpu_seconds_total", "counter", 0.9, "cores busy"),
    Signal("pool wait", "db_pool_requests_waiting", "gauge", 1.0, "waiting for a DB connection"),
    Signal("event-loop lag", "event_loop_lag_seconds", "gauge", 0.05, "s of event-loop delay"),
    Signal("shedding", "load_shed_requests_total", "counter", 1e-9, "shed per s"),
    Signal("rate limiting", "rate_limited_requests_total", "counter", 1e-9, "429s per s"),
    Signal("breaker open", "circuit_breaker_state", "gauge", 1.0, "a dependency's breaker"),
)


def limits(cores: float) -> dict[str, float]:
    """Each signal's limit; cpu's is 90% of the target's `cores`."""
    return {s.name: s.limit * cores if s.name == "cpu" else s.limit for s in SIGNALS}


@dataclass
class StepScrapes:
    """The /metrics pages of one step, with when each was read."""

    pages: list[tuple[float, Exposition]] = field(default_factory=list)
    errors: int = 0

    def figures(self) -> dict[str, float]:
        """Per signal the target exposes: a gauge's mean over the pages (summed over its
        series, the largest for a breaker), a counter's increase per second from the first
        page to the last. Empty when fewer than two pages were read."""
        if len(self.pages) < 2:
            return {}
        out: dict[str, float] = {}
        (t0, first), (t1, last) = self.pages[0], self.pages[-1]
        for signal in SIGNALS:
            if not last.exposes(signal.series):
                continue
            if signal.kind == "counter":
                span = max(t1 - t0, 1e-9)
                out[signal.name] = max(0.0, _sum(last, signal) - _sum(first, signal)) / span
            else:
                values = [_gauge(page, signal) for _, page in self.pages]
                out[signal.name] = sum(values) / len(values)
        return out


def _sum(page: Exposition, signal: Signal) -> float:
    return sum(s.value for s in page.series(signal.series))


def _gauge(page: Exposition, signal: Signal) -> float:
    values = [s.value for s in page.series(signal.series)]
    if not values:
        return 0.0
    return max(values) if signal.name == "breaker open" else sum(values)


class Scraper:
    """Reads one /metrics URL (already checked to be an allowed host) for a step at a
    time: `begin`, `sample` each second of the run, `end` returns the step's pages."""

    def __init__(self, url: str) -> None:
        from scalectl.netguard import loopback_client

        self.url = url
        self._client = loopback_client(SCRAPE_TIMEOUT)
        self._step = StepScrapes()
        self.reachable = False  # any page read at all

    def begin(self) -> None:
        """Start a step with a first page."""
        self._step = StepScrapes()
        self.sample()

    def sample(self) -> None:
        """Read the page once; a failure is counted, not raised (the target may be busy)."""
        import httpx

        try:
            response = self._client.get(self.url)
            if response.status_code != 200:
                raise ValueError(response.status_code)
            page = parse(response.text)
        except (httpx.HTTPError, ValueError, ExpositionError):
            self._step.errors += 1
            return
        self.reachable = True
        self._step.pages.append((time.monotonic(), page))

    def end(self) -> StepScrapes:
        """End the step with a last page; returns its pages."""
        self.sample()
        return self._step

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def first_saturated(
    steps: Sequence[tuple[float, Mapping[str, float]]], signal_limits: Mapping[str, float]
) -> tuple[str, float | None, list[str]]:
    """Given each run's rate and figures (any order), which resource saturated first: the
    signals at or over their limit at the lowest rate where any was (several when they
    tripped at the same rate), that rate, and the detail per signal. "unknown" with no
    rate when no figures were read or none reached its limit."""
    seen = [(rate, figs) for rate, figs in steps if figs]
    if not seen:
        return UNKNOWN, None, ["the target's /metrics was not readable: nothing to say"]
    for rate, figs in sorted(seen, key=lambda item: item[0]):
        over = [n for n, v in figs.items() if v >= signal_limits.get(n, float("inf"))]
        if over:
            detail = [
                f"{n}: {figs[n]:.3g} at {rate:g}/s (limit {signal_limits[n]:g})" for n in over
            ]
            return ", ".join(over), rate, detail
    names = sorted({n for _, figs in seen for n in figs})
    return (
        UNKNOWN,
        None,
        [f"read {', '.join(names) or 'no known series'}; none reached its limit"],
    )
