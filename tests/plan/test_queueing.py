"""Erlang C checked against values computed by hand (docs/sizing.md shows the working)."""

from __future__ import annotations

import math

import pytest

from scalectl.plan import queueing


def test_erlang_b_small_case_by_hand() -> None:
    # B(2, 1) = (1^2/2!) / (1 + 1 + 1/2) = 0.5 / 2.5 = 0.2
    assert queueing.erlang_b(2, 1.0) == pytest.approx(0.2)


def test_erlang_c_small_case_by_hand() -> None:
    # C(2, 1) = 2·B / (2 − 1·(1 − B)) = 0.4 / 1.2 = 1/3
    assert queueing.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # A single server: C(1, a) = a (the M/M/1 probability of waiting is ρ).
    assert queueing.erlang_c(1, 0.6) == pytest.approx(0.6)


def test_overloaded_queue_always_waits() -> None:
    assert queueing.erlang_c(3, 3.0) == 1.0
    assert queueing.fit(3, 3.0, 1.0, 1.0).mean_wait_seconds == math.inf


def test_fit_mean_wait_and_tail() -> None:
    # λ = 1/s, service 1 s, 2 consumers: C = 1/3, cμ − λ = 1, Wq = 1/3 s,
    # P(W > 2 s) = 1/3 · e^−2.
    fit = queueing.fit(2, 1.0, 1.0, 2.0)
    assert fit.utilization == pytest.approx(0.5)
    assert fit.mean_wait_seconds == pytest.approx(1 / 3)
    assert fit.p_wait_over_target == pytest.approx(math.exp(-2) / 3)


def test_consumers_needed_respects_utilization_first() -> None:
    # a = 6 × 2.5 = 15 busy consumers; at ρ ≤ 0.7 that is ceil(15/0.7) = 22.
    fit = queueing.consumers_needed(6, 2.5, 5, 0.95, 0.7)
    assert fit.consumers == 22
    assert fit.utilization == pytest.approx(15 / 22)


def test_consumers_needed_respects_the_wait_target() -> None:
    # a = 1 with a tight target: 0.1 s for 99% of jobs. Utilization alone would allow 2.
    # By hand: c = 4: B = 0.015385, C = 0.020408, P(W > 0.1) = C·e^(−0.3) = 0.0151 > 0.01;
    #          c = 5: B = 0.0030675, C = 0.0038314, P(W > 0.1) = C·e^(−0.4) = 0.00257.
    fit = queueing.consumers_needed(1.0, 1.0, 0.1, 0.99, 0.9)
    assert fit.p_wait_over_target <= 0.01
    smaller = queueing.fit(fit.consumers - 1, 1.0, 1.0, 0.1)
    assert smaller.p_wait_over_target > 0.01
    assert fit.consumers == 5
    assert fit.p_wait == pytest.approx(0.0038314, rel=1e-4)
