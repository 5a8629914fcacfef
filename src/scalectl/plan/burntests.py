"""The `promtool test rules` timing and the per-window burn-rate cases of rules.test.yml.

A window's case proves its pair and factor: a burst of errors just above its burn rate, long
enough to fill its long window and outlast the alert's `for`, fires the alert, and the same
burst just below stays quiet. The other windows must stay out of it: shorter ones of the
same alert need a higher factor, longer ones are diluted by healthy traffic before the burst.
Prometheus' rate() is replayed here (both range semantics and both extrapolation orders its
versions use) to choose the burst and to predict every alert and its $value; a window no
burst can separate from another is reported with the window that hides it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from scalectl.plan.alerts import AlertSetting, for_seconds
from scalectl.plan.burnrate import BurnAlert, BurnWindow

REQUESTS = 10_000_000  # per input interval: error counts stay whole numbers at any budget
MAX_EVALUATIONS = 2000  # per case, so promtool stays within seconds
# With per-window cases the step grows with the longest window: a 3-day window's case then
# takes about 150 evaluations of every rule, not 4,500.
EVALUATIONS_PER_LONGEST_WINDOW = 150
MARGIN = 0.01  # a window's burn rate this close to its factor is too close to predict


def timing(
    burn: list[BurnAlert], symptoms: dict[str, AlertSetting], per_window: bool
) -> tuple[int, int]:
    """(evaluation step, evaluation time) in minutes of the healthy, broken and slow-burn
    cases: late enough for the longest `for` (burn-rate or symptom) to have elapsed.
    `per_window`: the file also holds window_proofs' cases, which set a longer step."""
    longest = max(
        [a.for_seconds for a in burn] + [for_seconds(s.for_ or "0s") for s in symptoms.values()]
    )
    minutes = math.ceil(longest / 60)
    # Long SLO periods stretch the ticket `for`; evaluate less often so promtool stays fast.
    step = max(1, minutes // 120)
    if per_window:
        window = max(w.long_seconds for a in burn for w in a.windows)
        step = max(step, window // 60 // EVALUATIONS_PER_LONGEST_WINDOW)
    # A rule is pending from the first evaluation (one step, two samples): all fire by then.
    total = max(20, minutes + 2 * step + 3)
    return step, math.ceil(total / step) * step


@dataclass(frozen=True)
class Firing:
    """An alert a case expects: which one, and its $value (the long window's burn rate)."""

    kind: str
    severity: str
    value: float


@dataclass(frozen=True)
class WindowCase:
    """One promtool test group: every service gets the same two counters."""

    name: str
    interval_minutes: int
    # promtool expanding notation. good: the requests that spend no budget (errors: the
    # non-error statuses; latency: the bucket at the threshold). other: errors: the failed
    # requests; latency: the histogram's _count (every request).
    good_values: str
    other_values: str
    eval_minutes: int
    firing: list[Firing]


@dataclass(frozen=True)
class WindowProof:
    """A window's two cases, or why it has none."""

    window: BurnWindow
    fires: WindowCase | None
    quiet: WindowCase | None
    reason: str


def window_proofs(
    burn: list[BurnAlert], budget: float, step_minutes: int, latency: bool = False
) -> list[WindowProof]:
    """A proof per window of the enabled alerts, for the error budget `budget`, or with
    `latency` the latency budget (the share of requests slower than the threshold)."""
    return [
        _proof(burn, alert, w, budget, step_minutes, latency)
        for alert in burn
        for w in alert.windows
    ]


def _proof(
    burn: list[BurnAlert],
    alert: BurnAlert,
    window: BurnWindow,
    budget: float,
    step: int,
    latency: bool,
) -> WindowProof:
    slo = "latency " if latency else ""
    label = f"{slo}{alert.kind} {window.long}/{window.short} x{window.factor:g}"
    high = min(1.1 * window.factor * budget, (1 + window.factor * budget) / 2)
    low = 0.9 * window.factor * budget
    for shorter in alert.windows:
        # A shorter window sees the whole burst: it must need a faster burn to stay quiet.
        if (
            shorter is not window
            and shorter.long_seconds <= window.long_seconds
            and shorter.factor * budget <= high * (1 + MARGIN)
        ):
            return WindowProof(window, None, None, _hidden(label, shorter, "the shorter"))
    interval = max(60, window.short_seconds // 600 * 60)
    tick = math.lcm(interval, step * 60)
    # Errors fill the long window one evaluation before `for` starts counting, and the error
    # counter has grown before the window opens (so rate() extrapolates it as the others).
    burst = _round_up(window.long_seconds + alert.for_seconds + step * 60 + 2 * interval, interval)
    longer = [w.long_seconds for w in alert.windows if w.long_seconds > window.long_seconds]
    tried: set[int] = set()
    for target in [burst + interval] + [round(c * n) for n in longer for c in (1.0, 1.5, 2.0, 3.0)]:
        total = _round_up(max(target, burst + interval), tick)
        if total in tried or total // (step * 60) > MAX_EVALUATIONS:
            continue
        tried.add(total)
        start = (total - burst) // interval  # first sample index with errors
        cases = [
            _case(burn, alert, window, budget, step, interval, start, total, r, fires, latency)
            for r, fires in ((high, True), (low, False))
        ]
        if cases[0] is not None and cases[1] is not None:
            return WindowProof(window, cases[0], cases[1], "")
    hider = next((w for w in alert.windows if w.long_seconds > window.long_seconds), None)
    if hider is not None:
        return WindowProof(window, None, None, _hidden(label, hider, "the longer"))
    return WindowProof(
        window, None, None, f"{label}: no burst fires it alone in {MAX_EVALUATIONS} evaluations"
    )


def _hidden(label: str, other: BurnWindow, which: str) -> str:
    return (
        f"{label}: not tested alone; no burst fires it without {which} window "
        f"{other.long}/{other.short} x{other.factor:g}"
    )


def _round_up(seconds: int, unit: int) -> int:
    return -(-seconds // unit) * unit


def _case(
    burn: list[BurnAlert],
    alert: BurnAlert,
    window: BurnWindow,
    budget: float,
    step: int,
    interval: int,
    start: int,
    total: int,
    ratio: float,
    fires: bool,
    latency: bool,
) -> WindowCase | None:
    errors = round(ratio * REQUESTS)
    count = total // interval
    series = _series(start, count, errors)
    outcomes = {
        _outcome(burn, alert, window, budget, step * 60, interval, series, latency, v)
        for v in ((False, False), (False, True), (True, False), (True, True))
    }
    if len(outcomes) != 1:
        return None
    [outcome] = outcomes
    if outcome is None:
        return None
    firing = [Firing(kind, severity, value) for kind, severity, value in outcome]
    if fires != any(f.kind == alert.kind for f in firing):
        return None
    verb = "fires" if fires else "stays quiet"
    share = errors / REQUESTS
    return WindowCase(
        name=f"{'latency ' if latency else ''}{alert.kind} window {window.long}/{window.short} "
        f"{verb} at burn rate {share / budget:.4g} (factor {window.factor:g})",
        interval_minutes=interval // 60,
        good_values=_values(start, count, REQUESTS, REQUESTS - errors),
        other_values=f"0+{REQUESTS}x{count}" if latency else _values(start, count, 0, errors),
        eval_minutes=total // 60,
        firing=firing,
    )


def _values(start: int, count: int, before: int, during: int) -> str:
    """A counter growing by `before` per sample until index `start`, then by `during`."""
    step = f"+{before}" if before else ""
    head = "0" if start == 1 else f"0{step}x{start - 1}"
    base = before * (start - 1) + during
    return f"{head} {base}+{during}x{count - start}"


Outcome = tuple[tuple[str, str, float], ...] | None


def _outcome(
    burn: list[BurnAlert],
    tested: BurnAlert,
    window: BurnWindow,
    budget: float,
    step: int,
    interval: int,
    series: tuple[list[int], list[int]],
    latency: bool,
    variant: tuple[bool, bool],
) -> Outcome:
    """The alerts firing at the end, with their $value rounded as Prometheus' humanize
    shows it; None when any window is too close to its factor to be sure."""
    good, spent = series
    total = [g + s for g, s in zip(good, spent, strict=True)]
    end = (len(good) - 1) * interval
    out = []
    for alert in burn:
        first = (end - alert.for_seconds) // step * step
        value = None
        for t in range(max(0, first), end + 1, step):
            holding = None
            for w in alert.windows:
                rates = [
                    _latency_ratio(total, good, interval, t, s, variant)
                    if latency
                    else _ratio(good, spent, interval, t, s, variant)
                    for s in (w.long_seconds, w.short_seconds)
                ]
                if any(
                    r is not None and abs(r / budget - w.factor) <= MARGIN * w.factor for r in rates
                ):
                    return None
                long, short = rates
                burning = (
                    long is not None
                    and short is not None
                    and long / budget > w.factor
                    and short / budget > w.factor
                )
                if burning and alert is tested and w is not window:
                    return None  # another window of the same alert: no proof of this one
                if burning and holding is None:
                    assert long is not None
                    holding = long / budget
            if holding is None:
                value = None
                break
            value = holding
        if value is not None:
            # Four significant digits, as humanize prints them; a tie would be a coin toss.
            low, high = f"{value * (1 - 1e-9):.4g}", f"{value * (1 + 1e-9):.4g}"
            if low != high:
                return None
            out.append((alert.kind, alert.severity, float(high)))
    return tuple(out)


def _ratio(
    ok: list[int], bad: list[int], interval: int, t: int, window: int, variant: tuple[bool, bool]
) -> float | None:
    """The recorded error ratio: (rate(errors) or 0) / (rate(all) > 0)."""
    good = _rate(ok, interval, t, window, variant)
    failed = _rate(bad, interval, t, window, variant)
    if good is None or failed is None or good + failed <= 0:
        return None
    return failed / (good + failed)


def _latency_ratio(
    total: list[int],
    good: list[int],
    interval: int,
    t: int,
    window: int,
    variant: tuple[bool, bool],
) -> float | None:
    """The recorded slow share: (rate(count) - rate(bucket)) / (rate(count) > 0)."""
    valid = _rate(total, interval, t, window, variant)
    fast = _rate(good, interval, t, window, variant)
    if valid is None or fast is None or valid <= 0:
        return None
    return (valid - fast) / valid


def _series(start: int, count: int, errors: int) -> tuple[list[int], list[int]]:
    """The good and the spent requests' counters, by sample index."""
    good = [0] * (count + 1)
    spent = [0] * (count + 1)
    for j in range(1, count + 1):
        burst = errors if j >= start else 0
        good[j] = good[j - 1] + REQUESTS - burst
        spent[j] = spent[j - 1] + burst
    return good, spent


def _rate(
    values: list[int], interval: int, t: int, window: int, variant: tuple[bool, bool]
) -> float | None:
    """Prometheus' rate() over samples every `interval` seconds from 0, at time `t`.
    variant: (left-open range as Prometheus 3, zero-point clamp after the threshold as 2.50+)."""
    left_open, new_order = variant
    lo = (t - window) // interval + 1 if left_open else -(-(t - window) // interval)
    lo = max(lo, 0)
    hi = min(t // interval, len(values) - 1)
    if hi - lo < 1:
        return None
    first, last = values[lo], values[hi]
    increase = float(last - first)
    sampled = float((hi - lo) * interval)
    average = sampled / (hi - lo)
    to_start = float(lo * interval - (t - window))
    to_end = float(t - hi * interval)
    threshold = average * 1.1
    if new_order:
        if to_start >= threshold:
            to_start = average / 2
        if increase > 0 and first >= 0:
            to_start = min(to_start, sampled * (first / increase))
        extrapolated = sampled + to_start
    else:
        if increase > 0 and first >= 0:
            to_start = min(to_start, sampled * (first / increase))
        extrapolated = sampled + (to_start if to_start < threshold else average / 2)
    extrapolated += to_end if to_end < threshold else average / 2
    return increase * (extrapolated / sampled) / window


def burn_cases(proofs: list[WindowProof]) -> Iterator[WindowCase]:
    """The test groups of `proofs`, fires then quiet per window."""
    for proof in proofs:
        if proof.fires is not None and proof.quiet is not None:
            yield proof.fires
            yield proof.quiet
