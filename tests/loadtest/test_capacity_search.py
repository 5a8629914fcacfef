"""The search's bookkeeping when runs disagree, with a scripted target: which rate held is
the input here, so a sequence of outcomes stands in for the runs."""

from __future__ import annotations

from collections.abc import Iterator

from scalectl.loadtest.capacity import Gate, Phase, Probe, Run, Settings, search

GATE = Gate("p95_ms", 300.0, 0.01, "--p95-ms")


def scripted(outcomes: Iterator[bool], log: list[tuple[float, str]]) -> Probe:
    def probe(rate: float, seconds: int, phase: Phase) -> Run:
        held = next(outcomes)
        log.append((rate, phase))
        return Run(
            rate, phase, "pass" if held else "fail", [], seconds, 100, 0.0, rate,
            {"p95_ms": 10.0 if held else 900.0}, 10.0 if held else 900.0,
        )  # fmt: skip

    return probe


def settings() -> Settings:
    return Settings(
        start_rate=100, max_rate=10_000, factor=2, probes=0, repeats=1, cooldown_seconds=0
    )


def test_a_top_rate_that_held_on_repeat_widens_the_interval() -> None:
    # 100 held, 200 broke; repeats: 100 held, 200 held (noise); then 400 broke.
    log: list[tuple[float, str]] = []
    found = search(settings(), GATE, scripted(iter([True, False, True, True, False]), log))
    assert log == [(100, "step"), (200, "step"), (100, "repeat"), (200, "repeat"), (400, "widen")]
    assert (found.low, found.high, found.verdict, found.reasons) == (100, 400, "pass", [])


def test_runs_that_never_agree_are_inconclusive_and_say_why() -> None:
    # Every run further out holds as well: no rate broke on every run.
    log: list[tuple[float, str]] = []
    outcomes = iter([True, False, True, True, True, True, True])
    found = search(settings(), GATE, scripted(outcomes, log))
    assert [phase for _, phase in log].count("widen") == 3
    assert found.high is None and found.verdict == "inconclusive"
    assert found.reasons == [
        "no rate broke it on every run: the runs disagreed beyond 3 steps further out (the "
        "noise between runs is wider than the steps); lengthen --step-time"
    ]
