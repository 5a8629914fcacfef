"""Sizing of background workers: the consumers each queue needs by Erlang C
(scalectl.plan.queueing) and the worker replicas that provide them. docs/sizing.md."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scalectl.plan import queueing
from scalectl.plan.workloads import Worker


@dataclass(frozen=True)
class QueueSize:
    """The sizing of one queue (Erlang C): consumers, load and utilization, waits against the
    target, and alert thresholds."""

    worker: str
    queue: str
    priority: str
    consumers: int
    offered_load: float
    utilization: float
    p_wait: float
    mean_wait_seconds: float
    p_wait_over_target: float
    target_wait_seconds: float
    wait_quantile: float
    max_depth: int
    max_age_seconds: float


@dataclass(frozen=True)
class WorkerSize:
    """The sizing of one worker: consumers its queues need and the replicas that provide them."""

    name: str
    consumers_needed: int
    consumers_per_replica: int
    required_replicas: int
    replicas: int
    min_replicas: int
    max_replicas: int


def size_worker(name: str, worker: Worker) -> tuple[WorkerSize, list[QueueSize], list[str]]:
    """Size worker `name` (docs/sizing.md, "Queue consumers"): the consumers each of its queues
    needs to meet its wait target, and the replicas that provide them.

    Returns the worker's sizing, its queues' sizings in plan order, and why it cannot fit
    (empty when it can). Never raises for a worker that loaded.
    """
    needed = 0
    queues: list[QueueSize] = []
    infeasible: list[str] = []
    for queue in worker.queues:
        fit = queueing.consumers_needed(
            queue.arrival_rate,
            queue.mean_duration_seconds,
            queue.target_wait_seconds,
            queue.wait_quantile,
            worker.target_utilization,
        )
        needed += fit.consumers
        max_age = queue.max_age_seconds or 10 * queue.target_wait_seconds
        # Alert depth: what arrives during max_age, beyond what consumers drain.
        max_depth = queue.max_depth or max(10, math.ceil(queue.arrival_rate * max_age))
        queues.append(
            QueueSize(
                worker=name,
                queue=queue.name,
                priority=queue.priority,
                consumers=fit.consumers,
                offered_load=fit.offered_load,
                utilization=fit.utilization,
                p_wait=fit.p_wait,
                mean_wait_seconds=fit.mean_wait_seconds,
                p_wait_over_target=fit.p_wait_over_target,
                target_wait_seconds=queue.target_wait_seconds,
                wait_quantile=queue.wait_quantile,
                max_depth=max_depth,
                max_age_seconds=max_age,
            )
        )
    per_replica = worker.consumers_per_replica
    if worker.queue_concurrency:
        # Each queue has its own consumers, so the queue needing the most replicas sets them.
        required = max(
            math.ceil(q.consumers / (spec.concurrency or 1))
            for q, spec in zip(queues, worker.queues, strict=True)
        )
        shape = "each queue at its own concurrency"
    else:
        required = math.ceil(needed / per_replica)
        shape = f"{worker.processes} × {worker.threads}"
    replicas = min(max(required, worker.replicas.min), worker.replicas.max)
    if required > worker.replicas.max:
        infeasible.append(
            f"workers.{name}: needs {needed} consumers ({required} replicas of "
            f"{shape}), but replicas.max is {worker.replicas.max}"
        )
    size = WorkerSize(
        name=name,
        consumers_needed=needed,
        consumers_per_replica=per_replica,
        required_replicas=required,
        replicas=replicas,
        min_replicas=worker.replicas.min,
        max_replicas=worker.replicas.max,
    )
    return size, queues, infeasible
