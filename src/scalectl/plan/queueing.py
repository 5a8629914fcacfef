"""Erlang C (M/M/c) formulas for sizing queue consumers. See docs/sizing.md."""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_CONSUMERS = 100_000


def erlang_b(servers: int, offered: float) -> float:
    """Blocking probability, by the numerically stable recurrence B(k) = aB/(k + aB)."""
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return b


def erlang_c(servers: int, offered: float) -> float:
    """Probability an arriving job waits, for `servers` consumers and `offered` = λ/μ."""
    if offered >= servers:
        return 1.0
    b = erlang_b(servers, offered)
    return servers * b / (servers - offered * (1 - b))


@dataclass(frozen=True)
class QueueFit:
    """How `consumers` consumers handle a queue (Erlang C): load, utilization, and the chance and
    length of a wait."""

    consumers: int
    offered_load: float  # a = λ × mean service time, in busy consumers
    utilization: float  # a / c
    p_wait: float  # probability a job waits at all
    mean_wait_seconds: float  # Wq = C / (cμ − λ)
    p_wait_over_target: float  # P(W > t) = C · e^(−(cμ − λ)t)


def fit(servers: int, arrival_rate: float, mean_service: float, target_wait: float) -> QueueFit:
    """The M/M/c figures of `servers` consumers for jobs arriving at `arrival_rate`/s taking
    `mean_service` s; every job waits when the consumers cannot keep up."""
    offered = arrival_rate * mean_service
    mu = 1 / mean_service
    c_prob = erlang_c(servers, offered)
    drain = servers * mu - arrival_rate
    if drain <= 0:
        return QueueFit(servers, offered, offered / servers, 1.0, math.inf, 1.0)
    return QueueFit(
        consumers=servers,
        offered_load=offered,
        utilization=offered / servers,
        p_wait=c_prob,
        mean_wait_seconds=c_prob / drain,
        p_wait_over_target=c_prob * math.exp(-drain * target_wait),
    )


def consumers_needed(
    arrival_rate: float,
    mean_service: float,
    target_wait: float,
    quantile: float,
    max_utilization: float,
) -> QueueFit:
    """Fewest consumers with utilization <= max_utilization and P(W > t) <= 1 − quantile."""
    offered = arrival_rate * mean_service
    servers = max(1, math.ceil(offered / max_utilization - 1e-9))
    while servers < MAX_CONSUMERS:
        result = fit(servers, arrival_rate, mean_service, target_wait)
        if result.utilization <= max_utilization and result.p_wait_over_target <= 1 - quantile:
            return result
        servers += 1
    return fit(servers, arrival_rate, mean_service, target_wait)
