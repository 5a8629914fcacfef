"""How long a run must last to reach a verdict: the samples each gated figure needs
(results.MIN_SAMPLES), a warning before the run when the asked rate and -t cannot reach
them, and `-t auto`, which ends the run once every gate has its samples.

The share of the traffic each endpoint gets depends on the locustfile (its users' weights,
tasks and think times) and on the responses, so it is not known before the run: `-t auto`
watches the counts instead of predicting them, and the warning before a run is about what
the whole rate can reach at best.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from scalectl.errors import InputError
from scalectl.loadtest.groups import group_scope, metric_key
from scalectl.loadtest.rawjson import from_raw
from scalectl.loadtest.results import MIN_SAMPLES
from scalectl.loadtest.slo import SloSpec

AUTO = "auto"
_PERCENTILE = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0}


def needed_samples(spec: SloSpec) -> dict[str, tuple[int, str]]:
    """Per gated scope ("global" or an endpoint key as the spec names it): the most samples
    one of its whole-run gates needs, and which gate that is. Windowed criteria are left
    out: they count windows, not samples."""
    needs: dict[str, tuple[int, str]] = {}
    scopes: list[tuple[str, list[tuple[str, float]]]] = [
        ("global", spec.global_.items()),
        *((key, t.items()) for key, t in spec.endpoints.items()),
        *((group_scope(name), g.items()) for name, g in spec.groups.items()),
        *(
            (metric_key(name), [(f"{stat}_ms", v) for stat, v in m.items()])
            for name, m in spec.metrics.items()
        ),
        # A check's own gate: its evaluations come from the scope that declares it.
        *(
            (d.scope, [("checks_rate", d.check.checks_rate)])
            for d in spec.declared_checks()
            if d.check.checks_rate is not None
        ),
    ]
    for scope, thresholds in scopes:
        for metric, _ in thresholds:
            if metric in _PERCENTILE:
                need = MIN_SAMPLES[_PERCENTILE[metric]]
            elif metric in ("error_rate", "mean_ms", "checks_rate"):
                need = MIN_SAMPLES[50.0]
            else:
                continue
            if need > needs.get(scope, (0, ""))[0]:
                needs[scope] = (need, metric)
    return needs


def short_of_samples(spec: SloSpec, counts: dict[str, int], total: int) -> list[str]:
    """The gated scopes with fewer samples than they need, as 'GET /api/stats 44 of 100
    (p95_ms)', given the requests so far per endpoint key (`counts`) and in all (`total`,
    HTTP only, as the global gates count); empty when every gate can be decided."""
    short = []
    groups = {group_scope(name): g for name, g in spec.groups.items()}
    for scope, (need, metric) in needed_samples(spec).items():
        if scope in groups:
            have = sum(n for key, n in counts.items() if groups[scope].matches(key))
        else:
            have = total if scope == "global" else _count(scope, counts)
        if have < need:
            short.append(f"{scope} {have} of {need} ({metric})")
    return short


def _count(scope: str, counts: dict[str, int]) -> int:
    """Like Results.endpoint(): the exact 'METHOD name', or an unambiguous bare name."""
    if scope in counts:
        return counts[scope]
    named = [n for key, n in counts.items() if key.split(" ", 1)[-1] == scope]
    return named[0] if len(named) == 1 else 0


def rate_warning(spec: SloSpec, rate: float, measured_seconds: float) -> str | None:
    """Before a run at `rate` requests/s whose measured part lasts `measured_seconds`: why it
    cannot reach a verdict, naming the gate and the run time it would need at best (all the
    rate on that one endpoint); None when it can. An endpoint gets only its share of the
    rate, so None does not promise enough: `-t auto` makes sure."""
    worst: tuple[float, str, int, str] | None = None
    for scope, (need, metric) in needed_samples(spec).items():
        seconds = need / rate
        if seconds > measured_seconds and (worst is None or seconds > worst[0]):
            worst = (seconds, scope, need, metric)
    if worst is None:
        return None
    seconds, scope, need, metric = worst
    return (
        f"{scope} {metric} needs {need} samples: at {rate:g} requests/s that takes at least "
        f"{math.ceil(seconds)}s of measured load, more than the {measured_seconds:g}s asked; "
        "the run will be inconclusive. Give a longer -t, or -t auto"
    )


def then(
    first: Callable[[dict[str, Any]], None], second: Callable[[dict[str, Any]], None]
) -> Callable[[dict[str, Any]], None]:
    """Both progress callbacks, in order."""

    def both(live: dict[str, Any]) -> None:
        first(live)
        second(live)

    return both


class EnoughSamples:
    """`-t auto`: told each second's live figures (`observe`, the watch's progress), it says
    when every gate has its samples (`__call__`, the watch's should_stop). It keeps each
    measured second's counts, as the live file holds only the recent seconds."""

    def __init__(self, spec: SloSpec, warmup_seconds: float) -> None:
        self.spec = spec
        self.warmup_seconds = warmup_seconds
        self.seconds: dict[int, tuple[int, dict[str, int]]] = {}  # t -> (HTTP total, per key)
        self.short = short_of_samples(spec, {}, 0)

    def observe(self, live: dict[str, Any]) -> None:
        """Count the measured seconds in the live file's figures (rawjson.from_raw)."""
        for window in from_raw(live, self.warmup_seconds).windows:
            if not window.warmup:
                per_key = {key: part[0] for key, part in window.endpoints.items()}
                self.seconds[window.t] = (window.requests, per_key)
        counts: dict[str, int] = {}
        for _, per_key in self.seconds.values():
            for key, n in per_key.items():
                counts[key] = counts.get(key, 0) + n
        total = sum(n for n, _ in self.seconds.values())
        self.short = short_of_samples(self.spec, counts, total)

    def __call__(self) -> bool:
        return not self.short


def auto_stop(spec: SloSpec | None, warmup_seconds: float) -> EnoughSamples:
    """`-t auto`'s stop condition for `spec`. Raises InputError without gates that need
    samples: nothing would say when the run is long enough."""
    if spec is None or not needed_samples(spec):
        raise InputError("-t auto needs --plan or --slo with percentile or error-rate gates")
    return EnoughSamples(spec, warmup_seconds)
