"""SLOs judged against one run's results: every gate of an SloSpec pass, fail or
inconclusive (evaluate), and the abort criteria checked every second while it runs
(abort_breached).

Nothing here prints or imports locust/gevent; the command layer renders `Evaluation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from scalectl.errors import ExitCode, InputError
from scalectl.loadtest.checks import CheckTally, check_tallies
from scalectl.loadtest.groups import group_endpoint, group_scope, metric_endpoint, metric_key
from scalectl.loadtest.results import (
    METRIC_REQUEST_TYPE,
    MIN_SAMPLES,
    Endpoint,
    Latency,
    Results,
    Window,
)
from scalectl.loadtest.slo import (
    METRIC_STATS,
    DeclaredCheck,
    SloSpec,
    WindowCriterion,
    as_written,
)
from scalectl.usertext import did_you_mean, shown

Status = Literal["pass", "fail", "inconclusive"]
Verdict = Status

_PERCENTILE = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0}


@dataclass(frozen=True)
class SloResult:
    """One SLO judged: what was asked, what was observed, and pass, fail or inconclusive."""

    name: str  # "global p95_ms <= 300", "GET /api/stats error_rate <= 0.01"
    scope: str  # "global" or the endpoint's "METHOD name"
    metric: str  # a THRESHOLD_METRICS or WindowMetric name
    comparator: str  # "<=", ">=", or ">=" on the fraction of good windows
    threshold: float
    observed: float | None  # None when there was nothing to measure
    status: Status
    kind: Literal["run", "windows"] = "run"
    detail: str = ""  # why inconclusive, or window counts

    @property
    def passed(self) -> bool:
        """Whether the SLO passed."""
        return self.status == "pass"

    @property
    def threshold_text(self) -> str:
        """The threshold as a person reads it: '300.0 ms', '1.00%'."""
        return format_value(self.metric if self.kind == "run" else "fraction", self.threshold)

    @property
    def observed_text(self) -> str:
        """The observed value as a person reads it; n/a when nothing was measured."""
        return format_value(self.metric if self.kind == "run" else "fraction", self.observed)


@dataclass(frozen=True)
class Evaluation:
    """Every SLO of a spec judged against one run."""

    results: list[SloResult]  # one per SLO: global, then endpoints, then windows
    checks: list[CheckTally] = field(default_factory=list)  # per check and endpoint

    @property
    def verdict(self) -> Verdict:
        """fail if any SLO failed, else inconclusive if any was, else pass."""
        statuses = {s.status for s in self.results}
        if "fail" in statuses:
            return "fail"
        return "inconclusive" if "inconclusive" in statuses else "pass"

    @property
    def exit_code(self) -> ExitCode:
        """The exit code of the verdict: 0 pass, 1 fail, 4 inconclusive."""
        return {
            "pass": ExitCode.OK,
            "fail": ExitCode.CHECK_FAILED,
            "inconclusive": ExitCode.INCONCLUSIVE,
        }[self.verdict]


def format_value(metric: str, value: float | None) -> str:
    """Human text for a threshold or observation: '950.0 ms', '1.00%', '52.3/s', '96.7%'."""
    if value is None:
        return "n/a"
    if metric.endswith("_ms"):
        return f"{value:.1f} ms"
    if metric in METRIC_STATS:  # a custom metric, in its own unit
        return f"{value:g}"
    if metric in ("error_rate", "checks_rate", "fraction"):
        return f"{value * 100:.2f}%"
    return f"{value:.1f}/s"


def evaluate(
    spec: SloSpec, results: Results, *, min_samples: Mapping[float, int] = MIN_SAMPLES
) -> Evaluation:
    """Every SLO in `spec` against `results`: global, endpoints, groups, custom metrics, then
    windows. An endpoint name, group or metric matching nothing is an InputError."""
    resolved = _resolve_all(spec, results)
    out = [_run_slo("global", results.total, m, v, min_samples) for m, v in spec.global_.items()]
    for key, thresholds in spec.endpoints.items():
        endpoint = resolved[key]
        out += [_run_slo(endpoint.key, endpoint, m, v, min_samples) for m, v in thresholds.items()]
    for name, group in spec.groups.items():
        endpoint = resolved[group_scope(name)]
        out += [_run_slo(endpoint.key, endpoint, m, v, min_samples) for m, v in group.items()]
    for name, limits in spec.metrics.items():
        endpoint = resolved[metric_key(name)]
        for stat, value in limits.items():
            # Its values were recorded as if milliseconds: the latency fields hold them.
            judged = _run_slo(endpoint.key, endpoint, f"{stat}_ms", value, min_samples)
            label = f"{endpoint.key} {stat} <= {as_written(value)}"
            out.append(replace(judged, name=label, metric=stat))
    for declared in spec.declared_checks():
        if declared.check.checks_rate is not None:
            out.append(_check_slo(declared, resolved, results, min_samples))
    for criterion in spec.windows:
        scope = resolved[criterion.endpoint].key if criterion.endpoint else None
        out.append(_window_slo(criterion, scope, results, min_samples))
    return Evaluation(out, check_tallies(spec, results))


def _check_slo(
    declared: DeclaredCheck,
    resolved: Mapping[str, Endpoint],
    results: Results,
    min_samples: Mapping[float, int],
) -> SloResult:
    """One check's own `checks_rate`: its evaluations on every endpoint it applies to."""
    owner = resolved[declared.scope].key if declared.group is None else declared.scope
    scope = f"{owner} check '{declared.check.label}'"
    passed = failed = 0
    for e in results.endpoints:
        p, f = e.checks.get(declared.id, (0, 0))
        passed, failed = passed + p, failed + f
    counted = Endpoint(scope, "", scope, 0, 0, {}, results.total.latency, 0.0)
    counted = replace(counted, checks={declared.id: (passed, failed)})
    threshold = declared.check.checks_rate or 0.0
    return _run_slo(scope, counted, "checks_rate", threshold, min_samples)


def _resolve_all(spec: SloSpec, results: Results) -> dict[str, Endpoint]:
    named: list[tuple[str, str]] = [("endpoints", key) for key in spec.endpoints]
    named += [
        (f"windows[{i}].endpoint", c.endpoint) for i, c in enumerate(spec.windows) if c.endpoint
    ]
    named += [(f"abort[{i}].endpoint", c.endpoint) for i, c in enumerate(spec.abort) if c.endpoint]
    seen = [e.key for e in results.endpoints]
    resolved: dict[str, Endpoint] = {}
    lines = []
    for where, key in named:
        endpoint = results.endpoint(key)
        if endpoint is not None:
            resolved[key] = endpoint
            continue
        ambiguous = [e.key for e in results.endpoints if e.name == key]
        if len(ambiguous) > 1:
            lines.append(f"{where} '{shown(key)}': ambiguous, matches {', '.join(ambiguous)}")
        else:
            lines.append(f"{where} '{shown(key)}': no such endpoint{did_you_mean(key, seen)}")
    lines += _resolve_groups(spec, results, resolved)
    if lines:
        noun = "name" if len(lines) == 1 else "names"
        lines.append(f"endpoints seen: {', '.join(seen) if seen else '(none)'}")
        raise InputError(
            f"the SLO has {len(lines) - 1} endpoint {noun} that match no endpoint of this run",
            lines=lines,
        )
    return resolved


def _resolve_groups(spec: SloSpec, results: Results, resolved: dict[str, Endpoint]) -> list[str]:
    """Each group and custom metric of `spec` into `resolved` (by group_scope, metric_key);
    a line for each that matches nothing."""
    lines = []
    for name, group in spec.groups.items():
        endpoint = group_endpoint(name, group, results)
        if endpoint is None:
            lines.append(f"groups '{shown(name)}': {group.pattern} matches no endpoint")
        else:
            resolved[group_scope(name)] = endpoint
    fired = [e.name for e in results.endpoints if e.method == METRIC_REQUEST_TYPE]
    for name in spec.metrics:
        endpoint = metric_endpoint(name, results)
        if endpoint is None:
            lines.append(f"metrics '{shown(name)}': never fired{did_you_mean(name, fired)}")
        else:
            resolved[metric_key(name)] = endpoint
    return lines


def _run_slo(
    scope: str,
    endpoint: Endpoint,
    metric: str,
    threshold: float,
    min_samples: Mapping[float, int],
) -> SloResult:
    least = "<="
    need = 0
    observed: float | None
    if metric == "min_throughput_rps":
        least = ">="
        observed = round(endpoint.rps, 3)
        have = endpoint.requests
    elif metric == "error_rate":
        observed = round(endpoint.error_rate, 6) if endpoint.requests else None
        have, need = endpoint.requests, min_samples[50.0]
    elif metric == "checks_rate":
        # As error_rate: a rate needs as many evaluations as the median needs samples.
        least = ">="
        have, need = endpoint.checks_passed + endpoint.checks_failed, min_samples[50.0]
        observed = round(endpoint.checks_passed / have, 6) if have else None
    else:
        observed = endpoint.latency.get(metric.removesuffix("_ms"))
        have = endpoint.latency.count
        need = _latency_need(metric, min_samples)
    name = f"{scope} {metric} {least} {as_written(threshold)}"
    if observed is None or have < need:
        unit = "checks evaluated" if metric == "checks_rate" else "samples"
        detail = f"{have} {unit}, need {need}"
        return SloResult(
            name, scope, metric, least, threshold, observed, "inconclusive", detail=detail
        )
    ok = observed <= threshold if least == "<=" else observed >= threshold
    return SloResult(name, scope, metric, least, threshold, observed, "pass" if ok else "fail")


def _window_slo(
    criterion: WindowCriterion,
    scope: str | None,
    results: Results,
    min_samples: Mapping[float, int],
) -> SloResult:
    size = criterion.window_seconds
    total = int(results.duration // size)  # complete windows only; a trailing part is dropped
    groups: dict[int, list[tuple[int, int, Latency]]] = {g: [] for g in range(total)}
    for window in results.windows:
        if window.warmup:
            continue
        # Cut from the measured part's start: the warm-up is never part of a window.
        group = (window.t - results.measured_t) // size
        if group in groups and (part := _part(window, scope)) is not None:
            groups[group].append(part)
    good = bad = 0
    for parts in groups.values():
        value = _window_value(criterion.metric, parts, size, min_samples)
        if value is not None:
            good, bad = (good + 1, bad) if criterion.holds(value) else (good, bad + 1)
    share = as_written(round(criterion.min_fraction * 100, 6))
    name = f"{criterion.label(scope)} in >= {share}% of {size}s windows"
    detail = f"{good} good, {bad} bad, {total - good - bad} unmeasured of {total} windows"
    observed = round(good / total, 6) if total else None
    if total and good / total >= criterion.min_fraction:
        status: Status = "pass"
    elif total and bad / total > 1 - criterion.min_fraction:
        status = "fail"
    else:  # the unmeasured windows could tip it either way
        status = "inconclusive"
    return SloResult(
        name,
        scope or "global",
        criterion.metric,
        ">=",
        criterion.min_fraction,
        observed,
        status,
        kind="windows",
        detail=detail,
    )


def _part(window: Window, scope: str | None) -> tuple[int, int, Latency] | None:
    if scope is None:
        return window.requests, window.failures, window.latency
    return window.endpoints.get(scope)


def _window_value(
    metric: str,
    parts: Sequence[tuple[int, int, Latency]],
    seconds: int,
    min_samples: Mapping[float, int],
) -> float | None:
    """One window's value, or None when it has too few samples to say."""
    requests = sum(p[0] for p in parts)
    if metric == "rps":
        return requests / seconds
    if metric == "error_rate":
        return sum(p[1] for p in parts) / requests if requests >= min_samples[50.0] else None
    need = _latency_need(metric, min_samples)
    values = [v for p in parts if (v := p[2].get(metric.removesuffix("_ms"))) is not None]
    if requests < need or not values:
        return None
    if metric == "mean_ms":
        # Exact: the per-second means weighted by their counts.
        weighted = [(p[2].mean_ms, p[2].count) for p in parts if p[2].mean_ms is not None]
        return sum(m * n for m, n in weighted) / sum(n for _, n in weighted)
    # Results keep percentiles, not histograms, per second. The largest per-second pN is an
    # upper bound of the window's pN (exact for max_ms), so a window never passes wrongly.
    return max(values)


def abort_breached(
    spec: SloSpec, recent_windows: Sequence[Window], *, measured_t: int = 0
) -> str | None:
    """The reason to stop the run, when an abort criterion held for each of its last seconds.

    `recent_windows` are the run's per-second windows in any order, covering at least the
    longest `for_seconds`; a second missing from them counts as one with no requests.
    Percentiles are per second here, with no minimum sample count: abort is a safety valve.
    Seconds before `measured_t` (the warm-up, Results.measured_t) never count: a cold start
    is expected to be slow and must not abort the run.
    """
    if not recent_windows:
        return None
    by_t = {w.t: w for w in recent_windows}
    last = max(by_t)
    for criterion in spec.abort:
        first = last - criterion.for_seconds + 1
        if first < measured_t:
            continue  # the measured part is younger than for_seconds
        values = []
        for t in range(first, last + 1):
            window = by_t.get(t)
            part = _abort_part(window, criterion.endpoint)
            value = _window_value(criterion.metric, [part] if part else [], 1, _NO_MINIMUM)
            if value is None or not criterion.holds(value):
                break
            values.append(value)
        else:
            return (
                f"{criterion.label()} held for {criterion.for_seconds}s"
                f" (last second: {as_written(round(values[-1], 6))})"
            )
    return None


_NO_MINIMUM: Mapping[float, int] = {p: 1 for p in MIN_SAMPLES}


def _latency_need(metric: str, min_samples: Mapping[float, int]) -> int:
    """Samples a latency figure needs: its percentile's; the mean as many as the median;
    the max one."""
    if metric == "mean_ms":
        return min_samples[50.0]
    return min_samples[_PERCENTILE[metric]] if metric in _PERCENTILE else 1


def _abort_part(window: Window | None, endpoint: str | None) -> tuple[int, int, Latency] | None:
    if window is None:
        return None
    if endpoint is None:
        return window.requests, window.failures, window.latency
    key = _match(endpoint, window.endpoints)
    return window.endpoints.get(key) if key else None


def _match(key: str, keys: Iterable[str]) -> str | None:
    """Like Results.endpoint(): exact 'METHOD name', or an unambiguous bare name."""
    keys = list(keys)
    if key in keys:
        return key
    named = [k for k in keys if k.split(" ", 1)[-1] == key]
    return named[0] if len(named) == 1 else None
