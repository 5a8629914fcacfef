"""Figures from a drill's per-second load and probes, on hand-built timelines."""

from __future__ import annotations

import pytest

from scalectl.drill import figures as fig
from scalectl.drill.engine import Measured
from scalectl.drill.model import DrillResult, Figure, HealthSample, Second

START = 1_000_000.0


def second(t: int, phase: str, ok: int, failed: int, key: str = "GET /a") -> Second:
    return Second(t, phase, ok + failed, failed, 10.0, {key: (ok + failed, failed, 10.0)})


def measured(
    seconds: list[Second], samples: list[HealthSample] = (), end: float | None = START + 5.5
) -> Measured:  # type: ignore[assignment]
    return Measured(
        seconds=seconds,
        samples=list(samples),
        errors={},
        endpoints={},
        started_at=START,
        fault_start=START + 3.2,
        fault_end=end,
    )


TIMELINE = [
    second(0, "before", 10, 0),
    second(1, "before", 10, 0),
    second(2, "before", 10, 0),
    second(3, "during", 6, 4),
    second(4, "during", 2, 8),
    second(5, "during", 9, 1),
    second(6, "after", 10, 1),
    second(7, "after", 10, 0),
    second(8, "after", 10, 0),
    second(9, "after", 10, 0),
]


def test_counts_and_availability() -> None:
    m = measured(TIMELINE)
    assert fig.counts(m) == (71, 14)  # during (30, 13 failed) and after (41, 1 failed)
    assert fig.counts(m, ("before",)) == (30, 0)
    assert fig.availability(m) == pytest.approx(1 - 13 / 30, abs=1e-4)
    assert fig.availability(m, "before") == 1.0
    assert fig.availability(measured([])) is None


def test_recovery_is_the_start_of_three_clean_seconds_after_the_fault() -> None:
    # The fault ended at 5.5 s; second 6 still failed; 7, 8, 9 are clean: 7 - 5.5 = 1.5.
    assert fig.recovery_seconds(measured(TIMELINE)) == 1.5
    clean = [s if s.phase != "after" else second(s.t, "after", 10, 0) for s in TIMELINE]
    assert fig.recovery_seconds(measured(clean)) == 0.5  # second 6 starts 0.5 s after the end
    never = [*TIMELINE[:6], *(second(t, "after", 5, 5) for t in range(6, 10))]
    assert fig.recovery_seconds(measured(never)) is None
    assert fig.recovery_seconds(measured(TIMELINE, end=None)) is None


def test_keys_filter_endpoints_and_skip_custom_entries() -> None:
    seconds = [
        Second(3, "during", 12, 5, 5.0, {"GET /a": (10, 0, 5.0), "POST /b": (2, 5, 900.0)}),
        Second(4, "during", 5, 5, 5.0, {"JOB e2e": (5, 5, 1.0)}),
    ]
    m = measured(seconds)
    assert fig.availability(m, keys=lambda k: k.startswith("GET ")) == 1.0
    assert fig.counts(m, ("during",)) == (12, 5)  # the JOB entry is not a request
    assert fig.worst_p95(m, "during", lambda k: k.startswith("POST ")) == 900.0
    assert fig.worst_p95(m, "after", lambda k: True) is None


def test_median_p95_is_the_typical_second_of_a_phase() -> None:
    # One slow start-up second does not move it; an even count takes the middle two.
    before = [Second(t, "before", 10, 0, p95, {}) for t, p95 in enumerate((550.0, 30.0, 40.0))]
    during = [Second(3 + t, "during", 10, 0, p95, {}) for t, p95 in enumerate((600, 700, 800, 0))]
    m = measured([*before, *during])
    assert fig.median_p95(m, "before") == 40.0
    assert fig.median_p95(m, "during") == 650.0
    assert fig.median_p95(m, "after") is None


def test_probes_during_the_fault() -> None:
    samples = [
        HealthSample(START + 1, "u", 200, "pass", 3.0),
        HealthSample(START + 4, "u", 200, "warn", 3.0),
        HealthSample(START + 4.5, "u", None, None, 2000.0, "ReadTimeout"),
        HealthSample(START + 5, "u", 200, "warn", 3.0),
        HealthSample(START + 8, "u", 200, "pass", 3.0),
    ]
    during = fig.probes_during(measured(TIMELINE, samples))
    assert [s.at for s in during] == [START + 4, START + 4.5, START + 5]
    assert fig.answered(during) == pytest.approx(2 / 3, abs=1e-4)
    assert fig.health_seen(during) == "warn 2, ReadTimeout 1"
    assert fig.answered([]) is None


def test_figure_status_and_drill_verdict() -> None:
    assert Figure("x", 0, "requests", "<=", 0).status == "pass"
    assert Figure("x", 1, "requests", "<=", 0).status == "fail"
    assert Figure("x", 0.98, "ratio", ">=", 0.99).status == "fail"
    assert Figure("x", None, "s", "<=", 10).status == "inconclusive"
    assert Figure("x", 3, "s").status == "info"

    def result(
        *figs: Figure, reasons: list[str] | None = None, interrupted: bool = False
    ) -> DrillResult:
        return DrillResult(
            "d",
            "",
            START,
            START + 9,
            START + 3,
            START + 5,
            list(figs),
            [],
            [],
            [],
            {},
            reasons or [],
            interrupted,
        )

    ok, bad, unknown = (
        Figure("a", 0, "r", "<=", 0),
        Figure("b", 2, "r", "<=", 0),
        Figure("c", None, "r", "<=", 0),
    )
    assert result(ok).verdict == "pass"
    assert result(ok, bad, unknown).verdict == "fail"
    assert result(ok, unknown).verdict == "inconclusive"
    assert result(ok, reasons=["saturated"]).verdict == "inconclusive"
    assert result(ok, interrupted=True).verdict == "inconclusive"
