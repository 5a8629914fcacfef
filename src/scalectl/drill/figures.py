"""Numbers drills have in common, computed from the per-second load and the probes."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from scalectl.drill.engine import Measured
from scalectl.drill.model import HealthSample, Second

RECOVERED_AFTER = 3  # consecutive seconds without a failure count as recovered

KeyFilter = Callable[[str], bool]


def _all(_: str) -> bool:
    return True


def _in(seconds: Iterable[Second], phases: tuple[str, ...]) -> list[Second]:
    return [s for s in seconds if s.phase in phases]


def counts(
    m: Measured, phases: tuple[str, ...] = ("during", "after"), keys: KeyFilter = _all
) -> tuple[int, int]:
    """(requests, failures) in the phases, over the endpoints `keys` accepts."""
    requests = failures = 0
    for s in _in(m.seconds, phases):
        for key, (req, fail, _) in s.endpoints.items():
            if keys(key) and key.split(" ", 1)[0] != "JOB":
                requests += req
                failures += fail
    return requests, failures


def availability(m: Measured, phase: str = "during", keys: KeyFilter = _all) -> float | None:
    """Share of requests answered as expected in the phase; None without requests."""
    requests, failures = counts(m, (phase,), keys)
    return None if requests == 0 else round(1 - failures / requests, 4)


def recovery_seconds(m: Measured) -> float | None:
    """Seconds from the fault's end to the start of the first run of RECOVERED_AFTER
    seconds without failures (0 when nothing failed after it); None if it never recovered."""
    if m.fault_end is None:
        return None
    base = math.floor(m.started_at)
    after = [s for s in m.seconds if base + s.t + 1 > m.fault_end]
    by_t = {s.t: s for s in after}
    for s in after:
        # Consecutive wall-clock seconds that each answered requests without a failure: a
        # second with no window at all served nothing, so it is not a clean one.
        run = [by_t.get(s.t + k) for k in range(RECOVERED_AFTER)]
        if all(w is not None and w.requests > 0 and w.failures == 0 for w in run):
            return round(max(0.0, base + s.t - m.fault_end), 1)
    return None


def observed_after(m: Measured) -> float | None:
    """Seconds of load measured after the fault ended."""
    if m.fault_end is None or not m.seconds:
        return None
    last = math.floor(m.started_at) + max(s.t for s in m.seconds) + 1
    return round(max(0.0, last - m.fault_end), 1)


def worst_p95(m: Measured, phase: str, keys: KeyFilter) -> float | None:
    """The highest per-second p95 (ms) of the endpoints in the phase."""
    values = [
        p95
        for s in _in(m.seconds, (phase,))
        for key, (req, _, p95) in s.endpoints.items()
        if keys(key) and req and p95 is not None
    ]
    return max(values) if values else None


def median_p95(m: Measured, phase: str) -> float | None:
    """The median of the per-second p95s (ms) of every request in the phase: its typical
    p95, which one slow start-up second does not move."""
    values = sorted(s.p95_ms for s in _in(m.seconds, (phase,)) if s.p95_ms is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else round((values[mid - 1] + values[mid]) / 2, 3)


def probes_during(m: Measured) -> list[HealthSample]:
    """The health samples taken between the fault's start and end (none before it began)."""
    if m.fault_start is None:
        return []
    end = m.fault_end if m.fault_end is not None else math.inf
    return [s for s in m.samples if m.fault_start <= s.at <= end]


def answered(samples: list[HealthSample]) -> float | None:
    """Share of health probes that got an HTTP answer in time (any status)."""
    return (
        None if not samples else round(sum(s.status is not None for s in samples) / len(samples), 4)
    )


def health_seen(samples: list[HealthSample]) -> str:
    """The health statuses seen, most frequent first: 'warn 18, pass 2'."""
    tally: dict[str, int] = {}
    for s in samples:
        label = s.health or (f"HTTP {s.status}" if s.status is not None else s.error or "no answer")
        tally[label] = tally.get(label, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(tally.items(), key=lambda i: (-i[1], i[0])))
