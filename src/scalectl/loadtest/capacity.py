"""`scalectl loadtest capacity`: the highest rate a target sustains within an SLO.

Open-model runs at a held rate, one Locust run each (loadtest.capacityrun): rates grow
geometrically from a start rate until one breaks the SLO (stepping), are bisected between
the last that held and the first that broke (refining), and both boundaries are run again
(repeats) to see the noise. The answer is an interval: every run at or below `low` held,
every run at or above `high` broke. A run the generator may have paced (CPU, late arrivals,
a missed rate) or without the samples the gate needs ends the search as inconclusive.

The method and its limits: docs/sizing.md, "Measuring capacity".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from scalectl.errors import InputError
from scalectl.loadtest.evaluation import Verdict
from scalectl.loadtest.runlength import needed_samples
from scalectl.loadtest.slo import SloSpec, Thresholds

Phase = Literal["step", "refine", "repeat", "widen"]
# A latency objective's target quantile, gated at the first of these at or above it: the
# sample rule (results.MIN_SAMPLES) knows these.
_QUANTILES = ((0.5, "p50_ms"), (0.9, "p90_ms"), (0.95, "p95_ms"), (0.99, "p99_ms"))
SAMPLE_MARGIN = 1.2  # a run lasts for this many times the samples its gate needs, at least
RUN_OVERHEAD_SECONDS = 3  # Locust's start and stop around a run, for the time bound
WIDEN_STEPS = 3  # runs further out when the repeats disagreed at an end
MIN_RATE = 0.1  # the lowest rate a run asks for (--start-rate's floor)


@dataclass(frozen=True)
class Gate:
    """The SLO a rate must hold: one latency percentile and the error rate."""

    metric: str  # "p95_ms"
    threshold_ms: float
    max_error_rate: float
    source: str  # where it came from, for the report

    def spec(self) -> SloSpec:
        """The gate as an SLO spec, for loadtest.evaluation."""
        global_ = Thresholds(**{self.metric: self.threshold_ms}, error_rate=self.max_error_rate)
        return SloSpec(version=1, global_=global_)

    def label(self) -> str:
        """'p95 <= 300 ms, errors <= 1%'."""
        return (
            f"{self.metric.removesuffix('_ms')} <= {self.threshold_ms:g} ms, "
            f"errors <= {self.max_error_rate:.3g}"
        )

    def samples(self) -> int:
        """Samples a run needs for the gate to be decided (runlength's rule)."""
        return max((need for need, _ in needed_samples(self.spec()).values()), default=20)


def gate_from_plan(
    slo: Any, p95_ms: float | None, max_error_rate: float | None, where: str
) -> Gate:
    """The gate from a plan's `slo` section (`slo`: plan.slo.Slo): its latency objective
    (`latency_objective`, the target quantile gated at the next of p50/p90/p95/p99 at or
    above it), else its `latency.p95_ms`; the error rate from `slo.error_rate`. Explicit
    `p95_ms` and `max_error_rate` win. Raises InputError when the plan has no latency
    objective or p95 to hold."""
    errors = slo.error_rate if max_error_rate is None else max_error_rate
    if p95_ms is not None:
        return Gate("p95_ms", p95_ms, errors, "--p95-ms")
    objective = slo.latency_objective
    if objective is not None:
        metric = next((m for q, m in _QUANTILES if objective.target <= q + 1e-9), "p99_ms")
        source = (
            f"{where} slo.latency_objective "
            f"({objective.target:g} under {objective.threshold_ms:g} ms)"
        )
        return Gate(metric, objective.threshold_ms, errors, source)
    if slo.latency.p95_ms is not None:
        return Gate("p95_ms", slo.latency.p95_ms, errors, f"{where} slo.latency.p95_ms")
    raise InputError(f"{where}: slo sets no latency_objective or latency.p95_ms: give --p95-ms")


@dataclass(frozen=True)
class Settings:
    """How the search runs and where it stops."""

    start_rate: float
    max_rate: float
    factor: float = 1.5  # each step's rate over the previous one
    probes: int = 4  # bisection runs at most
    resolution: float = 0.05  # stop bisecting once high / low <= 1 + this
    repeats: int = 2  # runs again at each boundary, for the noise
    step_seconds: float = 10.0  # the least measured time of a run
    warmup_seconds: float = 2.0  # of each run, sent but not gated
    cooldown_seconds: float = 5.0  # pause after a run that broke the SLO: queues drain
    max_seconds: float = 900.0  # the whole search

    def __post_init__(self) -> None:
        if not 0 < self.start_rate <= self.max_rate:
            raise InputError(
                f"--start-rate {self.start_rate:g} must be above 0 and at most "
                f"--max-rate {self.max_rate:g}"
            )
        if self.factor <= 1:
            raise InputError(f"--factor {self.factor:g} must be above 1")

    def run_seconds(self, rate: float, samples: int) -> int:
        """One run's length at `rate`, warm-up included: at least step_seconds measured, and
        long enough for `samples` requests at that rate with a fifth to spare (users start
        within the first second, so it may be short)."""
        measured = max(self.step_seconds, samples / rate * SAMPLE_MARGIN)
        return math.ceil(self.warmup_seconds + measured)

    def steps(self) -> list[float]:
        """The stepping rates: start_rate × factor^k up to max_rate (which is the last)."""
        rates = [self.start_rate]
        while rates[-1] * self.factor < self.max_rate * (1 - 1e-9):
            rates.append(round(rates[-1] * self.factor, 1))
        if rates[-1] < self.max_rate:
            rates.append(self.max_rate)
        return rates


@dataclass(frozen=True)
class Run:
    """One run at a held rate, judged against the gate."""

    rate: float
    phase: Phase
    verdict: Verdict  # pass: the rate held; fail: it broke the SLO
    reasons: list[str]
    seconds: int
    requests: int
    error_rate: float
    achieved_rps: float
    latency: dict[str, float | None]  # p50_ms, p95_ms, p99_ms, max_ms (corrected)
    gated: float | None  # the gate's percentile
    saturation: dict[str, float] = field(default_factory=dict)  # figure per signal
    interrupted: bool = False  # Ctrl-C stopped it (and so the search)

    def to_json(self) -> dict[str, Any]:
        """report.json's `runs[]` entry."""
        return {
            "rate": self.rate,
            "phase": self.phase,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "seconds": self.seconds,
            "requests": self.requests,
            "error_rate": round(self.error_rate, 5),
            "achieved_rps": round(self.achieved_rps, 2),
            **self.latency,
            "gated_ms": self.gated,
            "saturation": {k: round(v, 4) for k, v in self.saturation.items()},
        }


Probe = Callable[[float, int, Phase], Run]  # rate, run seconds, phase -> the judged run


@dataclass
class Search:
    """The search's outcome: every run in order, the interval, and why it stopped early."""

    gate: Gate
    settings: Settings
    runs: list[Run] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    inconclusive: bool = False

    @property
    def low(self) -> float | None:
        """The highest rate with every run at or below it held; None if the lowest broke."""
        best = None
        for rate in sorted({r.rate for r in self.runs}):
            if any(r.verdict != "pass" for r in self.runs if r.rate <= rate):
                break
            best = rate
        return best

    @property
    def high(self) -> float | None:
        """The lowest rate with every run at or above it broken; None if the highest held."""
        best = None
        for rate in sorted({r.rate for r in self.runs}, reverse=True):
            if any(r.verdict != "fail" for r in self.runs if r.rate >= rate):
                break
            best = rate
        return best

    @property
    def verdict(self) -> Literal["pass", "inconclusive"]:
        """pass with both ends of the interval found by judged runs, else inconclusive."""
        found = self.low is not None and self.high is not None
        return "pass" if found and not self.inconclusive else "inconclusive"

    def curve(self) -> list[dict[str, Any]]:
        """Latency against rate, one row per rate: the median of its runs' figures, the
        spread of the gated percentile, and how many runs held."""
        rows = []
        for rate in sorted({r.rate for r in self.runs}):
            at = [r for r in self.runs if r.rate == rate and r.verdict != "inconclusive"]
            if not at:
                continue
            gated = [r.gated for r in at if r.gated is not None]
            row: dict[str, Any] = {"rate": rate, "runs": len(at)}
            row["held"] = sum(r.verdict == "pass" for r in at)
            for key in ("p50_ms", "p95_ms", "p99_ms"):
                row[key] = _median([v for r in at if (v := r.latency.get(key)) is not None])
            row["gated_ms"] = _median(gated)
            row["gated_min_ms"] = min(gated, default=None)
            row["gated_max_ms"] = max(gated, default=None)
            row["error_rate"] = _median([r.error_rate for r in at])
            row["achieved_rps"] = _median([r.achieved_rps for r in at])
            rows.append(row)
        return rows

    def knee(self) -> dict[str, Any] | None:
        """The knee of the latency curve (Kneedle): normalising rate and the gated latency to
        0..1 over the measured rates, the rate where the curve lies furthest below the
        straight line from the first rate to the last; None with fewer than 3 rates."""
        rows = [r for r in self.curve() if r["gated_ms"] is not None]
        if len(rows) < 3:
            return None
        x0, x1 = rows[0]["rate"], rows[-1]["rate"]
        y0, y1 = rows[0]["gated_ms"], rows[-1]["gated_ms"]
        if x1 <= x0 or y1 <= y0:
            return None
        best = max(
            rows, key=lambda r: (r["rate"] - x0) / (x1 - x0) - (r["gated_ms"] - y0) / (y1 - y0)
        )
        return {"rate": best["rate"], "gated_ms": best["gated_ms"]}


def search(
    settings: Settings, gate: Gate, probe: Probe, clock: Callable[[], float] = time.monotonic
) -> Search:
    """Step, refine and repeat as the module says, within settings.max_seconds (a run that
    would end past it is not started). Returns the Search; never raises for a run's result."""
    result = Search(gate, settings)
    deadline = clock() + settings.max_seconds
    samples = gate.samples()

    def run(rate: float, phase: Phase) -> Run | None:
        seconds = settings.run_seconds(rate, samples)
        if clock() + seconds + RUN_OVERHEAD_SECONDS > deadline:
            result.reasons.append(
                f"the search's time bound ({settings.max_seconds:g}s, --max-time) ended it "
                f"before a {seconds}s run at {rate:g}/s"
            )
            return None
        judged = probe(rate, seconds, phase)
        result.runs.append(judged)
        if judged.verdict == "inconclusive":
            result.inconclusive = True
            result.reasons += [f"at {rate:g}/s: {reason}" for reason in judged.reasons]
            return None
        if judged.verdict == "fail" and settings.cooldown_seconds:
            time.sleep(settings.cooldown_seconds)  # let the target's queues drain
        return judged

    good: float | None = None
    bad: float | None = None
    for rate in settings.steps():
        judged = run(rate, "step")
        if judged is None:
            return result
        if judged.verdict == "fail":
            bad = rate
            break
        good = rate
    if good is None:
        result.reasons.append(
            f"the SLO broke already at the start rate {settings.start_rate:g}/s: lower --start-rate"
        )
        return result
    if bad is None:
        result.reasons.append(
            f"the SLO held up to --max-rate {settings.max_rate:g}/s: the capacity is above "
            "it; raise --max-rate"
        )
        return result
    for _ in range(settings.probes):
        if bad / good <= 1 + settings.resolution:
            break
        mid = round(math.sqrt(good * bad), 1)
        if mid in (good, bad):
            break  # the rates are a tenth apart: nothing left between them
        judged = run(mid, "refine")
        if judged is None:
            return result
        good, bad = (mid, bad) if judged.verdict == "pass" else (good, mid)
    for _ in range(settings.repeats):
        for rate in (good, bad):
            if run(rate, "repeat") is None:
                return result
    return _widen(result, settings, run)


def _widen(result: Search, settings: Settings, run: Callable[[float, Phase], Run | None]) -> Search:
    """A repeat that disagreed at an end leaves no rate that always broke (or always held):
    run one --factor further out, at most WIDEN_STEPS times, so the interval widens by the
    noise instead of the search ending without one."""
    for _ in range(WIDEN_STEPS):
        if result.high is not None or not result.runs:
            break
        rate = round(max(r.rate for r in result.runs) * settings.factor, 1)
        if rate > settings.max_rate or run(rate, "widen") is None:
            break
    for _ in range(WIDEN_STEPS):
        if result.low is not None or not result.runs:
            break
        rate = round(min(r.rate for r in result.runs) / settings.factor, 1)
        if rate < MIN_RATE or run(rate, "widen") is None:
            break
    if result.runs and (result.low is None or result.high is None) and not result.reasons:
        end = "held the SLO on every run" if result.low is None else "broke it on every run"
        result.reasons.append(
            f"no rate {end}: the runs disagreed beyond {WIDEN_STEPS} steps further out (the "
            "noise between runs is wider than the steps); lengthen --step-time"
        )
    return result


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
