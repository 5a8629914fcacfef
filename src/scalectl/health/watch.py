"""`--watch` and `--wait`: rounds of probes, with Gatus's consecutive thresholds.

A check turns `unhealthy` after `failure_threshold` failing rounds in a row and `healthy`
after `success_threshold` passing rounds in a row; until either happens it is `pending`
(and otherwise keeps its state), so one blip neither fails a gate nor clears an alarm.
Every loop is bounded by a deadline and a round count.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from scalectl.health.probe import HealthSummary, Row

State = Literal["pending", "healthy", "unhealthy"]
FAILURE_THRESHOLD = 3  # Gatus's defaults
SUCCESS_THRESHOLD = 2


@dataclass
class CheckState:
    """Where one check stands across rounds: its state and its current streak."""

    key: tuple[str, str]  # (target, url)
    state: State = "pending"
    successes: int = 0  # consecutive
    failures: int = 0  # consecutive

    def to_json(self) -> dict[str, Any]:
        """The check's state as `scalectl health --json` reports it after rounds."""
        return {
            "target": self.key[0],
            "url": self.key[1],
            "state": self.state,
            "consecutive_successes": self.successes,
            "consecutive_failures": self.failures,
        }


@dataclass(frozen=True)
class Transition:
    """A check's state changing in a round, with that round's rows as evidence."""

    key: tuple[str, str]
    old: State
    new: State
    rows: tuple[Row, ...]  # the check's rows in the round that flipped it

    def line(self) -> str:
        """One line for the log: `api-1 http://...: pending -> healthy (HTTP 200)`."""
        target, url = self.key
        why = next((r.detail for r in self.rows if r.component is None), "")
        return f"{target} {url}: {self.old} -> {self.new}" + (f" ({why})" if why else "")


@dataclass
class Tracker:
    """The state of every check across rounds, by Gatus's consecutive thresholds."""

    failure_threshold: int = FAILURE_THRESHOLD
    success_threshold: int = SUCCESS_THRESHOLD
    checks: dict[tuple[str, str], CheckState] = field(default_factory=dict)
    last: HealthSummary | None = None

    def update(self, summary: HealthSummary) -> list[Transition]:
        """Count one round's summary into each check's streak; returns the checks whose state
        changed."""
        self.last = summary
        failing = {r.key for r in summary.failing()}
        grouped: dict[tuple[str, str], list[Row]] = {}
        for row in summary.rows:
            grouped.setdefault(row.key, []).append(row)
        changes = []
        for key, rows in grouped.items():
            st = self.checks.setdefault(key, CheckState(key))
            old = st.state
            if key in failing:
                st.failures, st.successes = st.failures + 1, 0
                if st.failures >= self.failure_threshold:
                    st.state = "unhealthy"
            else:
                st.successes, st.failures = st.successes + 1, 0
                if st.successes >= self.success_threshold:
                    st.state = "healthy"
            if st.state != old:
                changes.append(Transition(key, old, st.state, tuple(rows)))
        return changes

    def all_healthy(self) -> bool:
        """The --wait gate: every check passed its last `success_threshold` rounds in a row.
        Being in the healthy state is not enough: a healthy check keeps that state through
        fewer than `failure_threshold` failures, and a gate must not open on a round in
        which a check failed."""
        return bool(self.checks) and all(
            s.state == "healthy" and s.successes >= self.success_threshold
            for s in self.checks.values()
        )

    def unhealthy(self) -> list[CheckState]:
        """The checks in the unhealthy state."""
        return [s for s in self.checks.values() if s.state == "unhealthy"]

    def state_of(self, key: tuple[str, str]) -> CheckState | None:
        """The state of the check `key` (target, URL), or None before its first round."""
        return self.checks.get(key)


@dataclass(frozen=True)
class WatchOutcome:
    """How a run of rounds ended: rounds done, seconds taken, and whether the stop condition was
    met."""

    rounds: int
    elapsed_seconds: float
    done: bool  # the stop condition was met (for --wait: everything healthy)


def run_rounds(
    probe: Callable[[float | None], HealthSummary],
    tracker: Tracker,
    *,
    interval: float,
    timeout: float,
    on_round: Callable[[HealthSummary, list[Transition]], None],
    stop_when: Callable[[Tracker], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WatchOutcome:
    """Probe every `interval` until `stop_when` holds or `timeout` passes. `probe` gets the
    time left, to cap its per-check timeout so the last round ends by the deadline."""
    start = clock()
    deadline = start + timeout
    max_rounds = math.ceil(timeout / interval) + 1  # a bound in count, not only in time
    rounds = 0
    while rounds < max_rounds:
        left = deadline - clock()
        if left <= 0:
            break
        summary = probe(left)
        rounds += 1
        on_round(summary, tracker.update(summary))
        if stop_when is not None and stop_when(tracker):
            return WatchOutcome(rounds, clock() - start, True)
        pause = min(start + rounds * interval, deadline) - clock()
        if pause > 0:
            sleep(pause)
    return WatchOutcome(rounds, clock() - start, False)
