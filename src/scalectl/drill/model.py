"""What a drill produces: a timeline of events, figures with thresholds, a verdict."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Figure:
    """One measured number and, when it gates the drill, its threshold."""

    name: str  # failed_requests, replacement_seconds, availability_during, ...
    value: float | None
    unit: str  # requests, s, ratio, ms, jobs
    comparator: Literal["<=", ">=", ""] = ""
    threshold: float | None = None
    detail: str = ""

    @property
    def gated(self) -> bool:
        """Whether the figure has a threshold, so it counts towards the verdict."""
        return self.comparator != "" and self.threshold is not None

    @property
    def status(self) -> Verdict | Literal["info"]:
        """pass or fail against the threshold; inconclusive without a value; info when
        the figure is not gated."""
        if not self.gated:
            return "info"
        if self.value is None:
            return "inconclusive"
        assert self.threshold is not None
        ok = (
            self.value <= self.threshold
            if self.comparator == "<="
            else self.value >= self.threshold
        )
        return "pass" if ok else "fail"

    def to_json(self) -> dict[str, Any]:
        """The figure as drill.json has it, with its status."""
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "comparator": self.comparator or None,
            "threshold": self.threshold,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Event:
    """One line of the drill's timeline."""

    at: float  # unix time
    text: str


class Timeline:
    """Events as they happen, from the fault thread and the drill alike (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[Event] = []
        self.marks: dict[str, float] = {}  # fault_start, fault_end, ...

    def note(self, text: str) -> float:
        """Record the event `text` now; returns its time (unix seconds)."""
        now = time.time()
        with self._lock:
            self.events.append(Event(now, text))
        return now

    def mark(self, name: str, text: str) -> float:
        """Record the event `text` and, the first time only, the mark `name` (fault_start,
        fault_end) at its time; returns that time (unix seconds)."""
        now = self.note(text)
        with self._lock:
            self.marks.setdefault(name, now)
        return now


@dataclass(frozen=True)
class HealthSample:
    """One health probe during the drill."""

    at: float
    url: str
    status: int | None  # HTTP status, None when no answer
    health: str | None  # pass | warn | fail from application/health+json
    millis: float
    error: str = ""


@dataclass(frozen=True)
class Second:
    """One second of the drill's load, as measured by the Locust plugin."""

    t: int  # seconds since the load started
    phase: str  # before | during | after
    requests: int
    failures: int
    p95_ms: float | None
    endpoints: dict[str, tuple[int, int, float | None]] = field(default_factory=dict)


@dataclass
class DrillResult:
    """One drill's run: its timeline, per-second load, probes and figures."""

    name: str
    description: str
    started_at: float
    ended_at: float
    fault_start: float | None
    fault_end: float | None
    figures: list[Figure]
    events: list[Event]
    seconds: list[Second]
    samples: list[HealthSample]
    errors: dict[str, int]
    reasons: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def verdict(self) -> Verdict:
        """fail when a gated figure failed; inconclusive when interrupted, when a figure had
        no value or when a reason says the figures cannot be trusted; else pass."""
        if self.interrupted:
            return "inconclusive"
        statuses = {f.status for f in self.figures}
        if "fail" in statuses:
            return "fail"
        if "inconclusive" in statuses or self.reasons:
            return "inconclusive"
        return "pass"
