"""A run's verdict: the SLO evaluation, overruled where the run cannot support it.

pass needs a run that measured what it meant to: a saturated generator, an interrupted run,
no requests after the warm-up, or an open model that fell short of its rate make the run
inconclusive (exit 4), never a pass; an abort criterion that fired makes it a failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scalectl.loadtest.evaluation import Evaluation, Verdict
from scalectl.loadtest.runner import RunOutcome
from scalectl.loadtest.watch import SATURATED_CPU

RATE_TOLERANCE = 0.10  # the open model's achieved rate may miss the asked one by this much


@dataclass
class Judgement:
    """A run's verdict, the reasons that changed it, and report.json's `generator` figures."""

    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    generator: dict[str, Any] = field(default_factory=dict)  # report.json's `generator`


def judge(
    outcome: RunOutcome, evaluation: Evaluation, *, rate: float | None, warmup_seconds: float
) -> Judgement:
    """The verdict of a finished run, with a reason for every rule that changed it."""
    verdict = evaluation.verdict
    reasons: list[str] = []
    if outcome.generator.saturated:
        verdict = "inconclusive"
        reasons.append(
            "the load generator was saturated (a Locust process used or waited for a core "
            f"over {SATURATED_CPU:g}% of the time): use more --processes, fewer users, "
            "or a machine that is not busy with the system under test"
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
    if rate is not None:
        # Arrivals actually started per second over the run's steady part (OpenStats).
        opened = outcome.results.open
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
    return Judgement(verdict, reasons, generator)
