"""Consecutive thresholds and bounded rounds, on a fake clock."""

from __future__ import annotations

from scalectl.health.probe import HealthSummary, Row, summarize
from scalectl.health.watch import Tracker, run_rounds


def summary(*statuses: str, strict: bool = False) -> HealthSummary:
    rows = [
        Row(f"t{i}", f"http://t{i}/health", "/health", None, s, 1.0, "")  # type: ignore[arg-type]
        for i, s in enumerate(statuses)
    ]
    return summarize(rows, strict=strict)


def test_gatus_thresholds_three_failures_two_successes() -> None:
    tracker = Tracker()
    states = []
    for status in ["fail", "fail", "fail", "pass", "fail", "pass", "pass", "warn"]:
        tracker.update(summary(status))
        states.append(tracker.checks[("t0", "http://t0/health")].state)
    assert states == [
        "pending",
        "pending",
        "unhealthy",
        "unhealthy",  # one success is not enough
        "unhealthy",
        "unhealthy",
        "healthy",
        "healthy",  # warn is healthy unless strict
    ]


def test_strict_counts_warn_and_transitions_are_reported() -> None:
    tracker = Tracker(failure_threshold=1, success_threshold=1)
    changes = tracker.update(summary("warn", strict=True))
    assert [c.line() for c in changes] == ["t0 http://t0/health: pending -> unhealthy"]
    assert not tracker.all_healthy()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_stops_when_everything_is_healthy() -> None:
    clock = FakeClock()
    answers = iter([summary("fail", "pass"), summary("pass", "pass"), summary("pass", "pass")])
    tracker = Tracker()
    outcome = run_rounds(
        lambda left: next(answers),
        tracker,
        interval=2,
        timeout=60,
        on_round=lambda s, c: None,
        stop_when=Tracker.all_healthy,
        clock=clock,
        sleep=clock.sleep,
    )
    assert (outcome.rounds, outcome.done, outcome.elapsed_seconds) == (3, True, 4.0)


def test_rounds_are_bounded_by_the_timeout_and_probes_get_the_time_left() -> None:
    clock = FakeClock()
    lefts: list[float | None] = []

    def probe(left: float | None) -> HealthSummary:
        lefts.append(left)
        clock.now += 0.5  # each round takes half a second
        return summary("fail")

    outcome = run_rounds(
        probe,
        Tracker(),
        interval=2,
        timeout=7,
        on_round=lambda s, c: None,
        stop_when=Tracker.all_healthy,
        clock=clock,
        sleep=clock.sleep,
    )
    assert (outcome.rounds, outcome.done, outcome.elapsed_seconds) == (4, False, 7.0)
    assert lefts == [7, 5, 3, 1]


def test_the_wait_gate_needs_a_clean_last_round() -> None:
    # t1 turns healthy in rounds 1-2; in round 3 it fails once (still healthy: one failure
    # is below the threshold of 3) just as t0 turns healthy. A gate that opened then would
    # pass a deployment while one of its checks was failing.
    tracker = Tracker()
    gate = []
    for round_ in [("fail", "pass"), ("pass", "pass"), ("pass", "fail"), ("pass", "pass")]:
        tracker.update(summary(*round_))
        gate.append(tracker.all_healthy())
    assert [s.state for s in tracker.checks.values()] == ["healthy", "healthy"]
    assert gate == [False, False, False, False]  # t1 has 1 pass in a row since its failure
    tracker.update(summary("pass", "pass"))
    assert tracker.all_healthy()


def test_wait_does_not_stop_on_a_round_with_a_failure() -> None:
    clock = FakeClock()
    answers = iter(
        [summary("fail", "pass"), summary("pass", "pass"), summary("pass", "fail")]
        + [summary("pass", "pass")] * 3
    )
    outcome = run_rounds(
        lambda left: next(answers),
        Tracker(),
        interval=1,
        timeout=60,
        on_round=lambda s, c: None,
        stop_when=Tracker.all_healthy,
        clock=clock,
        sleep=clock.sleep,
    )
    assert (outcome.rounds, outcome.done) == (5, True)
