"""One run of `scalectl loadtest capacity` (loadtest.capacity's probe): the open model at a
held rate in Locust child processes (loadtest.runner), judged as `scalectl loadtest --rate`
judges a run (evaluation, verdict), with the target's /metrics read each second
(loadtest.saturation)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalectl.loadtest import runner
from scalectl.loadtest.capacity import Gate, Phase, Probe, Run
from scalectl.loadtest.evaluation import evaluate
from scalectl.loadtest.saturation import Scraper
from scalectl.loadtest.settings import load_shape
from scalectl.loadtest.verdict import judge

# Loaded by Locust when no locustfile is given: GET of SCALECTL_CAPACITY_PATH.
GET_PATH = Path(__file__).resolve().parent / "child" / "getpath.py"
PATH_ENV = "SCALECTL_CAPACITY_PATH"


@dataclass(frozen=True)
class Target:
    """What every run sends and where: the locustfile, the host (already checked), Locust's
    processes and users, the environment, and the /metrics URL to read (None: not read)."""

    locustfile: Path
    host: str
    processes: int
    env: Mapping[str, str] = field(default_factory=dict)
    users: int | None = None  # default: one per task/s of the rate (settings.load_shape)
    tags: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    metrics_url: str | None = None


def probe(
    target: Target,
    gate: Gate,
    warmup_seconds: float,
    scraper: Scraper | None,
    told: Callable[[Run], None] = lambda _: None,
) -> Probe:
    """The probe loadtest.capacity.search calls: one run at a rate, judged against `gate`
    (a run Ctrl-C interrupted is inconclusive and says so), `told` each finished Run."""
    spec = gate.spec()

    def one(rate: float, seconds: int, phase: Phase) -> Run:
        users, spawn_rate = load_shape(target.users, None, rate)
        config = runner.RunConfig(
            locustfile=target.locustfile,
            host=target.host,
            users=users,
            spawn_rate=spawn_rate,
            run_time_seconds=seconds,
            processes=target.processes,
            tags=target.tags,
            env=target.env,
            rate=rate,
            warmup_seconds=warmup_seconds,
            extra_args=target.extra_args,
            max_run_time_seconds=seconds,
        )
        outcome = runner.run(config, progress=_scraping(scraper, warmup_seconds))
        figures = scraper.end().figures() if scraper is not None else {}
        evaluation = evaluate(spec, outcome.results)
        judged = judge(outcome, evaluation, rate=rate, warmup_seconds=warmup_seconds)
        reasons = list(judged.reasons)
        verdict = judged.verdict
        if outcome.interrupted:
            verdict = "inconclusive"
            reasons.append("interrupted (Ctrl-C)")
        if verdict == "inconclusive" and not reasons:
            # Too few samples: the SLOs say how many they had.
            reasons = [f"{s.name}: {s.detail}" for s in evaluation.results if s.detail]
        total = outcome.results.total
        latency = total.latency
        run = Run(
            rate=rate,
            phase=phase,
            verdict=verdict,
            reasons=reasons,
            seconds=seconds,
            requests=total.requests,
            error_rate=total.error_rate,
            achieved_rps=float(judged.generator.get("achieved_rps", 0.0)),
            latency={
                "p50_ms": latency.p50_ms,
                "p95_ms": latency.p95_ms,
                "p99_ms": latency.p99_ms,
                "max_ms": latency.max_ms,
            },
            gated=latency.get(gate.metric.removesuffix("_ms")),
            saturation=figures,
            interrupted=outcome.interrupted,
        )
        told(run)
        return run

    return one


def _scraping(scraper: Scraper | None, warmup_seconds: float) -> Callable[[dict[str, Any]], None]:
    """The run's progress callback: a /metrics page each second, the step's first one read
    once the warm-up is over. Like the latency and errors, the saturation signals leave the
    warm-up out: its users' first requests come as a burst (a scenario's on_start), which
    the target may shed although the rate itself holds."""
    if scraper is None:
        return lambda _: None
    scraper.begin()
    measuring = warmup_seconds <= 0

    def on_progress(live: dict[str, Any]) -> None:
        nonlocal measuring
        started = live.get("started_at")
        warm = isinstance(started, int | float) and time.time() >= started + warmup_seconds
        if warm and not measuring:
            measuring = True
            scraper.begin()
            return
        scraper.sample()

    return on_progress
