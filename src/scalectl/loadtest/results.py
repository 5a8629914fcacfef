"""Measurements of one load-test run, as scalectl's own process sees them: totals per
endpoint and in aggregate, per-second windows, the open model's figures, and where the
warm-up ends. scalectl.loadtest.rawjson builds them from what the Locust plugin wrote.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scalectl.loadtest.ratecurve import RateCurve, StageRate, stage_rates

# A scenario's own measurements: `request` events of this type, the value as response_time
# (docs/loadtest.md, "Custom metrics"). Kept out of the aggregate, gated by the SLO file's
# `metrics`.
METRIC_REQUEST_TYPE = "METRIC"
PERCENTILES = (50.0, 90.0, 95.0, 99.0)
# Fewest samples for a percentile to mean anything: p99 needs ~100 to be more than the max.
MIN_SAMPLES = {50.0: 20, 90.0: 50, 95.0: 100, 99.0: 500}


@dataclass(frozen=True)
class Latency:
    """Percentiles in milliseconds from an HDR histogram (3 significant digits, µs unit)."""

    count: int
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None

    @classmethod
    def of(cls, hist: Any) -> Latency:
        """The statistics of an HDR histogram of microseconds; all None when it is empty."""
        from scalectl.loadtest.hdr import Summary

        summary = Summary(hist)
        if summary.total == 0:
            return cls(0, None, None, None, None, None, None)

        def pct(p: float) -> float:
            return round(float(summary.percentile(p)) / 1000, 3)

        return cls(
            count=summary.total,
            p50_ms=pct(50),
            p90_ms=pct(90),
            p95_ms=pct(95),
            p99_ms=pct(99),
            max_ms=round(summary.max_value / 1000, 3),
            mean_ms=round(summary.mean / 1000, 3),
        )

    def get(self, name: str) -> float | None:
        """A statistic by SLO name: p50, p90, p95, p99, max, mean."""
        value: float | None = getattr(self, f"{name}_ms")
        return value


@dataclass(frozen=True)
class Endpoint:
    """One endpoint's totals over the measured part of the run (or the aggregate of all HTTP
    requests)."""

    key: str  # "<METHOD> <name>", the name SLOs use
    method: str
    name: str
    requests: int
    failures: int
    errors: dict[str, int]
    latency: Latency
    rps: float
    # The measured part's HDR histogram (µs): groups of endpoints are merged from it.
    hist: Any = field(default=None, repr=False, compare=False)
    # The SLO file's checks evaluated on its responses: check number -> (passed, failed)
    checks: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def checks_passed(self) -> int:
        """Check evaluations on these requests that passed."""
        return sum(p for p, _ in self.checks.values())

    @property
    def checks_failed(self) -> int:
        """Check evaluations on these requests that failed."""
        return sum(f for _, f in self.checks.values())

    @property
    def error_rate(self) -> float:
        """Failed requests as a fraction of all; 0 without requests."""
        return self.failures / self.requests if self.requests else 0.0


def sum_checks(
    parts: Iterable[dict[int, tuple[int, int]]],
) -> dict[int, tuple[int, int]]:
    """Check counts (check number -> (passed, failed)) of several endpoints, added up."""
    out: dict[int, tuple[int, int]] = {}
    for part in parts:
        for check_id, (passed, failed) in part.items():
            had = out.get(check_id, (0, 0))
            out[check_id] = (had[0] + passed, had[1] + failed)
    return out


@dataclass(frozen=True)
class Window:
    """One second of the run."""

    t: int  # seconds since the start
    requests: int
    failures: int
    latency: Latency
    users: int
    endpoints: dict[str, tuple[int, int, Latency]] = field(default_factory=dict)
    warmup: bool = False  # in the warm-up: shown in the time series, left out of every gate


@dataclass(frozen=True)
class OpenStats:
    """What the open model (`--rate`) did: arrivals per second as actually started, late and
    dropped arrivals, and the uncorrected latency beside the corrected one."""

    user_rate: float
    arrivals: dict[int, int]  # seconds since the start -> arrivals started in that second
    late: int
    dropped: int
    max_lag_ms: float
    raw: dict[str, Latency]  # per endpoint key, and "Aggregated"
    # The whole seconds (since the start, end exclusive) from when every user was running
    # and past its first arrival (and the warm-up was over) to the last whole second of the
    # run; None if there is none.
    steady: tuple[int, int] | None = None
    duration: float = 0.0  # seconds from the start (after any warm-up) to the run's end
    offset: float = 0.0  # how far into its wall-clock second the run started

    def stage_rates(self, curve: RateCurve) -> list[StageRate]:
        """A ramping rate's stages, each with its intended and achieved arrivals per second
        over the steady span's whole seconds in it; empty without a steady span."""
        if self.steady is None:
            return []
        return stage_rates(curve, self.arrivals, self.steady, self.offset)

    @property
    def total_arrivals(self) -> int:
        """Every arrival started in the measured part."""
        return sum(self.arrivals.values())

    def achieved_rate(self) -> float:
        """Arrivals actually started per second over the steady part of the run: late ones
        count in the second they started, dropped ones and users that were never spawned do
        not. Averaged over the whole steady span, so a catch-up after a stall and the
        stall's empty second balance out. Without a steady span (the ramp-up outlasted the
        run), over the whole run."""
        if self.steady is not None:
            first, last = self.steady
            started = sum(n for t, n in self.arrivals.items() if first <= t < last)
            return started / (last - first)
        return self.total_arrivals / self.duration if self.duration > 0 else 0.0


@dataclass(frozen=True)
class Results:
    """Everything one run measured: totals per endpoint and in aggregate, per-second windows, the
    open model's figures, and where the warm-up ends."""

    started_at: float
    ended_at: float
    endpoints: list[Endpoint]
    total: Endpoint  # every request, as an endpoint named "Aggregated"
    windows: list[Window]
    open: OpenStats | None = None
    users: dict[int, int] = field(default_factory=dict)  # seconds since start -> users
    # `--master`: each remote worker's CPU demand (% of a core, loadtest.cpu) as its
    # heartbeats reported it
    worker_demand: dict[str, list[float]] = field(default_factory=dict)
    warmup: float = 0.0  # seconds asked for; 0 without a warm-up
    # Unix time the measured part starts: a whole second, or started_at without a warm-up
    measured_from: float | None = None
    # The measured seconds as recorded, for histograms.json (loadtest.windowfile): unix
    # second -> endpoint key -> [requests, failures, encoded HDR histogram]
    histograms: dict[int, dict[str, list[Any]]] = field(
        default_factory=dict, repr=False, compare=False
    )
    aggregated: frozenset[str] = frozenset()  # the endpoint keys the aggregate counts
    # The SLO file's groups by status or tag, by scope ("group NAME"): only their requests
    filtered: dict[str, Endpoint] = field(default_factory=dict)

    @property
    def measured_start(self) -> float:
        """Unix time the measured part starts: the end of the warm-up, or the run's start."""
        return self.started_at if self.measured_from is None else self.measured_from

    @property
    def measured_t(self) -> int:
        """The first measured window's `t` (0 without a warm-up)."""
        if self.measured_from is None:
            return 0
        return int(self.measured_from) - math.floor(self.started_at)

    @property
    def duration(self) -> float:
        """The measured part, after any warm-up: what throughput and windows count over."""
        return max(self.ended_at - self.measured_start, 1e-9)

    @property
    def run_duration(self) -> float:
        """The whole run, warm-up included."""
        return max(self.ended_at - self.started_at, 1e-9)

    def endpoint(self, key: str) -> Endpoint | None:
        """By "<METHOD> <name>", or by bare name when that is unambiguous."""
        for e in self.endpoints:
            if e.key == key:
                return e
        named = [e for e in self.endpoints if e.name == key]
        return named[0] if len(named) == 1 else None
