"""A run's verdict: the SLO evaluation, overruled where the run cannot support it.

pass needs a run that measured what it meant to: a generator that may have set the pace
(a saturated process, every core of the machine busy, more processes than cores, arrivals
late or dropped beyond LATE_SHARE), an interrupted run, no requests after the warm-up, or an
open model that fell short of its rate make the run inconclusive (exit 4), never a pass; an
abort criterion that fired makes it a failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scalectl.loadtest.evaluation import Evaluation, Verdict
from scalectl.loadtest.ratecurve import RateCurve, missed_stages
from scalectl.loadtest.results import OpenStats
from scalectl.loadtest.runner import RunOutcome
from scalectl.loadtest.watch import BUSY_MACHINE_CPU, SATURATED_CPU, GeneratorStats

RATE_TOLERANCE = 0.10  # the open model's achieved rate may miss the asked one by this much
# Open model: the share of due arrivals that may start late (LATE_SECONDS in child/pacing, 10
# ms) or never. On a shared 2-core machine an on-time run sees up to about a fifth late by
# scheduling noise alone (tests/loadtest/test_open_model.py); an oversubscribed generator
# sees most of them late.
LATE_SHARE = 0.25


@dataclass
class Judgement:
    """A run's verdict, the reasons that changed it, and report.json's `generator` figures."""

    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    generator: dict[str, Any] = field(default_factory=dict)  # report.json's `generator`


def judge(
    outcome: RunOutcome,
    evaluation: Evaluation,
    *,
    rate: float | None,
    warmup_seconds: float,
    stages: RateCurve | None = None,
    max_late_share: float | None = None,
) -> Judgement:
    """The verdict of a finished run, with a reason for every rule that changed it. `rate` is
    the open model's held rate, `stages` its ramping one (at most one of them);
    `max_late_share` overrides LATE_SHARE."""
    late_limit = LATE_SHARE if max_late_share is None else max_late_share
    verdict = evaluation.verdict
    reasons: list[str] = []
    limits = outcome.generator.limits
    if limits:
        # The generator's CPU: what it measured may be its own delays, pass or fail.
        verdict = "inconclusive"
        reasons += [_limit_reason(code, outcome.generator) for code in limits]
    shape = outcome.shape
    if shape is not None and shape.cut:
        verdict = "inconclusive" if verdict != "fail" else verdict
        reasons.append(
            f"the load shape {shape.name} was still running at --max-run-time and was "
            "stopped there: its later stages were not run; raise --max-run-time"
        )
    if outcome.aborted:
        verdict = "fail"
        reasons.append(f"aborted: {outcome.aborted}")
    if outcome.interrupted and verdict == "pass":
        verdict = "inconclusive"
        reasons.append("interrupted before the planned run time")
    if outcome.results.total.requests == 0:
        verdict = "inconclusive"
        reasons.append(
            "no requests were recorded" + (" after the warm-up" if warmup_seconds else "")
        )
    generator = outcome.generator.to_json()
    opened = outcome.results.open
    late = _late_share(opened)
    if late is not None and opened is not None:
        generator["late_share"] = round(late, 4)
        if late > late_limit and not outcome.interrupted:
            generator["limited_by"] = [*generator["limited_by"], "late_arrivals"]
            # The corrected latency counts every late start, so a failed SLO stands.
            verdict = "inconclusive" if verdict == "pass" else verdict
            reasons.append(
                f"{opened.late + opened.dropped} of {opened.total_arrivals + opened.dropped} "
                f"arrivals ({late:.0%}, more than {late_limit:.0%}) started late or never: "
                "the generator could not keep to the schedule; raise --users, lower --rate, "
                "or use --processes auto on a machine not busy with the system under test"
            )
    if rate is not None:
        # Arrivals actually started per second over the run's steady part (OpenStats).
        achieved = opened.achieved_rate() if opened else 0.0
        generator["requested_rps"] = rate
        generator["achieved_rps"] = round(achieved, 3)
        if abs(achieved - rate) > RATE_TOLERANCE * rate and not outcome.interrupted:
            verdict = "inconclusive" if verdict != "fail" else verdict
            reasons.append(
                f"the generator started {achieved:.1f} tasks/s of the {rate:g}/s asked "
                f"(more than {RATE_TOLERANCE:.0%} off): users stuck behind slow responses "
                "fall behind their schedule; raise --users"
            )
    if stages is not None:
        missed = _stage_rates(opened, stages, generator)
        if missed and not outcome.interrupted:
            verdict = "inconclusive" if verdict != "fail" else verdict
            reasons += missed
    return Judgement(verdict, reasons, generator)


def _stage_rates(
    opened: OpenStats | None, stages: RateCurve, generator: dict[str, Any]
) -> list[str]:
    """A ramping rate: each stage's intended and achieved rate into `generator` (`stages`,
    and the means over the steady span as requested_rps and achieved_rps); a reason for
    every stage more than RATE_TOLERANCE off, or for the whole span when no stage had
    arrivals enough to be judged alone."""
    rates = opened.stage_rates(stages) if opened else []
    seconds = sum(s.seconds for s in rates)
    intended = sum(s.intended * s.seconds for s in rates) / seconds if seconds else 0.0
    achieved = sum(s.achieved * s.seconds for s in rates) / seconds if seconds else 0.0
    generator["requested_rps"] = round(intended, 3)
    generator["achieved_rps"] = round(achieved, 3)
    generator["stages"] = [
        {
            "stage": s.label(),
            "seconds": s.seconds,
            "requested_rps": round(s.intended, 3),
            "achieved_rps": round(s.achieved, 3),
            "checked": s.checked,
        }
        for s in rates
    ]
    advice = "users stuck behind slow responses fall behind their schedule; raise --users"
    missed = missed_stages(rates, RATE_TOLERANCE)
    if missed:
        return [
            f"stage {s.label()}: the generator started {s.achieved:.1f} tasks/s of the "
            f"{s.intended:.1f}/s meant there (more than {RATE_TOLERANCE:.0%} off): {advice}"
            for s in missed
        ]
    if any(s.checked for s in rates):
        return []
    if not seconds or abs(achieved - intended) > RATE_TOLERANCE * max(intended, 1e-9):
        return [
            f"the generator started {achieved:.1f} tasks/s of the {intended:.1f}/s meant "
            f"over the run's steady part (more than {RATE_TOLERANCE:.0%} off): {advice}"
        ]
    return []


def _late_share(opened: OpenStats | None) -> float | None:
    """Late plus dropped arrivals as a share of all that fell due; None without any."""
    if opened is None:
        return None
    due = opened.total_arrivals + opened.dropped
    return (opened.late + opened.dropped) / due if due else None


def _limit_reason(code: str, stats: GeneratorStats) -> str:
    """The verdict's text for one of GeneratorStats.limits."""
    if code == "process_cpu":
        return (
            "the load generator was saturated (a Locust process used or waited for a core "
            f"over {SATURATED_CPU:g}% of the time): use more --processes, fewer users, "
            "or a machine that is not busy with the system under test"
        )
    if code == "machine_cpu":
        wanted = sum(stats.demand_median.values())
        return (
            f"the machine's CPU was busy on all {stats.cores} cores (median "
            f"{stats.machine_median or 0:.0f}%, limit {BUSY_MACHINE_CPU:g}%) while the Locust "
            f"processes together wanted {wanted:.0f}% of a core: the generator may have set "
            "the pace; use fewer users or a machine not busy with the system under test"
        )
    return (
        f"{stats.processes} Locust processes on {stats.cores} cores: they take turns for a "
        "core and their users wait for them; use --processes auto (one per core) or fewer"
    )
