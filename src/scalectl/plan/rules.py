"""Cross-field rules a schema cannot express; each names the field to fix."""

from __future__ import annotations

import ipaddress
import itertools
import math
from collections.abc import Iterator

from scalectl.plan import adapter, burnrate
from scalectl.plan.appenv import WORKER_METRICS_PORT
from scalectl.plan.autoscaling import Autoscaling, ScalingRules
from scalectl.plan.fieldtypes import cpu_cores, memory_bytes
from scalectl.plan.model import Plan, Profile
from scalectl.plan.probes import PROBE_KINDS, Health, WorkerHealth
from scalectl.plan.scalingmetrics import TARGET_TYPES, ScalingMetric
from scalectl.plan.sli import LATENCY_FIELDS, METRIC_FIELDS, RAW_FIELDS, Sli
from scalectl.plan.slo import Latency, LatencyObjective
from scalectl.plan.workloads import Replicas, Resources, Worker

PathMsg = tuple[tuple[str | int, ...], str]


def check(plan: Plan, profile: Profile) -> list[PathMsg]:
    """The cross-field problems of `plan` under `profile`, each with the key path to fix; empty
    when there are none."""
    return list(_check(plan, profile))


# kubernetes/<name>.yaml files of their own
RESERVED_NAMES = ("namespace", "loadtest", "prometheus-adapter")


def _check(plan: Plan, profile: Profile) -> Iterator[PathMsg]:
    for section in ("services", "workers"):
        for name in getattr(plan, section):
            if name in RESERVED_NAMES:
                yield ((section, name), f"'{name}' is reserved for a rendered manifest")
    routes: dict[str, str] = {}
    for name, svc in plan.services.items():
        if svc.route in routes:
            yield (
                ("services", name, "route"),
                f"route '{svc.route}' is already used by service '{routes[svc.route]}'",
            )
        routes.setdefault(svc.route, name)
        base: tuple[str | int, ...] = ("services", name)
        yield from _replicas(svc.replicas, (*base, "replicas"))
        yield from _resources(svc.resources, (*base, "resources"))
        if svc.pdb and svc.replicas.max < 2:
            yield (
                (*base, "replicas", "max"),
                "a PodDisruptionBudget needs at least 2 replicas; raise max or set pdb: false",
            )
        if svc.health.liveness == svc.health.readiness:
            yield (
                (*base, "health", "readiness"),
                "must differ from liveness: a failing dependency should take a pod out of "
                "rotation, not restart it",
            )
        yield from _probes(svc.health, (*base, "health", "timings"))
        yield from _sli(svc.sli, (*base, "sli"), plan.slo.latency_objective)
        auto = svc.autoscaling
        yield from _behavior(auto, (*base, "autoscaling"))
        if auto.uses_request_rate and svc.sli.raw:
            yield _raw_request_rate(auto, (*base, "autoscaling"))
        for i, metric in enumerate(auto.metrics):
            yield from _metric(metric, (*base, "autoscaling", "metrics", i))
        if (
            auto.enabled
            and auto.cpu_percent is None
            and auto.memory_percent is None
            and auto.rps_per_pod is None
            and not auto.metrics
        ):
            # HPA needs at least one metric; rps_per_pod is derived only when asked for.
            yield ((*base, "autoscaling"), "enabled autoscaling needs at least one target")
        if name in plan.workers:
            yield (("workers", name), f"name '{name}' is already used by a service")

    for name, worker in plan.workers.items():
        base = ("workers", name)
        yield from _replicas(worker.replicas, (*base, "replicas"))
        yield from _resources(worker.resources, (*base, "resources"))
        yield from _concurrency(worker, base)
        if worker.metrics is not None and worker.command is None:
            yield (
                (*base, "metrics"),
                "needs the worker's `command`: the default Dramatiq worker always serves "
                f"its metrics on port {WORKER_METRICS_PORT}, /metrics",
            )
        yield from _worker_health(worker, (*base, "health"))
        for i, metric in enumerate(worker.autoscaling.metrics or []):
            yield from _metric(metric, (*base, "autoscaling", "metrics", i))
        seen: set[str] = set()
        for i, queue in enumerate(worker.queues):
            qpath = (*base, "queues", i)
            if queue.name in seen:
                yield ((*qpath, "name"), f"queue '{queue.name}' is listed twice")
            seen.add(queue.name)
            if queue.backoff.min_seconds > queue.backoff.max_seconds:
                yield (
                    (*qpath, "backoff", "min_seconds"),
                    f"must be <= max_seconds ({queue.backoff.min_seconds:g} > "
                    f"{queue.backoff.max_seconds:g})",
                )

    yield from adapter.conflicts(plan)

    if plan.database is not None:
        db = plan.database
        if db.pool.min > db.pool.max:
            yield (
                ("database", "pool", "min"),
                f"must be <= max ({db.pool.min} > {db.pool.max})",
            )
        available = db.primary.max_connections - db.primary.reserved_connections
        if db.pgbouncer.enabled and db.pgbouncer.reserve_pool_size * 2 > available > 0:
            yield (
                ("database", "pgbouncer", "reserve_pool_size"),
                f"must be at most half the available server connections "
                f"({db.pgbouncer.reserve_pool_size} > {available} / 2)",
            )
        if db.primary.reserved_connections >= db.primary.max_connections:
            yield (
                ("database", "primary", "reserved_connections"),
                f"must be < max_connections ({db.primary.reserved_connections} >= "
                f"{db.primary.max_connections})",
            )

    yield from _latency(plan.slo.latency, ("slo", "latency"))
    for endpoint, slo in plan.slo.endpoints.items():
        if not endpoint.strip():
            yield (("slo", "endpoints", endpoint), "endpoint name must not be empty")
        if slo.latency is not None:
            yield from _latency(slo.latency, ("slo", "endpoints", endpoint, "latency"))

    # Rounded as the rendered rules write them (scalectl.plan.context).
    budgets = {"error": round(1 - plan.slo.availability.target, 10)}
    if plan.slo.latency_objective is not None:
        budgets["latency"] = round(1 - plan.slo.latency_objective.target, 10)
    yield from burnrate.check(plan.alerting.burn_rate, plan.slo.availability.period_days, budgets)

    if profile.upstreams == "loopback" and not _loopback_listen(profile.listen):
        yield (("profiles",), "a loopback profile must listen on 127.0.0.0/8 or [::1]")


def _raw_request_rate(auto: Autoscaling, path: tuple[str | int, ...]) -> PathMsg:
    """A raw SLI's total_query counts the whole service: no per-pod rate for the HPA."""
    entry = (
        "an autoscaling.metrics entry for your counter (type: Pods, prometheus: "
        "{series: <counter>, kind: counter})"
    )
    if auto.rps_per_pod is not None:
        return (
            (*path, "rps_per_pod"),
            "needs the metric form of sli: a raw sli (error_query, total_query) gives no "
            f"per-pod request rate; scale on {entry} instead",
        )
    return (
        (*path, "cpu_percent"),
        "is null, so the HPA would scale on requests per second per pod, which a raw sli "
        f"(error_query, total_query) cannot give: set cpu_percent, and add {entry} to scale "
        "on requests",
    )


def _loopback_listen(listen: str) -> bool:
    """`listen` is an address literal and a port (the schema's pattern): parse the address,
    since a text prefix would let 127.999.0.1 in and keep [0:0:0:0:0:0:0:1] out."""
    host = listen.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _replicas(replicas: Replicas, path: tuple[str | int, ...]) -> Iterator[PathMsg]:
    if replicas.min > replicas.max:
        yield ((*path, "min"), f"must be <= max ({replicas.min} > {replicas.max})")


def _resources(res: Resources, path: tuple[str | int, ...]) -> Iterator[PathMsg]:
    if cpu_cores(res.requests.cpu) > cpu_cores(res.limits.cpu):
        yield (
            (*path, "requests", "cpu"),
            f"must be <= limits.cpu ({res.requests.cpu} > {res.limits.cpu})",
        )
    if memory_bytes(res.requests.memory) > memory_bytes(res.limits.memory):
        yield (
            (*path, "requests", "memory"),
            f"must be <= limits.memory ({res.requests.memory} > {res.limits.memory})",
        )


def _concurrency(worker: Worker, path: tuple[str | int, ...]) -> Iterator[PathMsg]:
    given = [q.concurrency is not None for q in worker.queues]
    for i, is_set in enumerate(given):
        where = (*path, "queues", i, "concurrency")
        if is_set and worker.command is None:
            yield (
                where,
                "needs the worker's `command`: the default Dramatiq worker has one --threads "
                "per process for all its queues; give this queue a worker of its own instead",
            )
        elif not is_set and any(given) and worker.command is not None:
            yield (
                (*path, "queues", i),
                "concurrency: set it on every queue of this worker or on none",
            )


def _probes(health: Health | WorkerHealth, path: tuple[str | int, ...]) -> Iterator[PathMsg]:
    for kind in PROBE_KINDS:
        times = health.times(kind)
        if times.timeout_seconds >= times.period_seconds:
            # A check still running when the next is due: Kubernetes accepts it, but the
            # probe's failure time (period × threshold) then no longer says what it does.
            yield (
                (*path, kind, "timeout_seconds"),
                f"must be below period_seconds ({times.timeout_seconds} >= {times.period_seconds})",
            )


def _worker_health(worker: Worker, path: tuple[str | int, ...]) -> Iterator[PathMsg]:
    health = worker.health
    if health.exec is not None and health.tcp is not None:
        yield ((*path, "tcp"), "give exec or tcp, not both: one check serves every probe")
    if health.check == "metrics" and worker.command is not None and worker.metrics is None:
        if "health" in worker.model_fields_set:
            yield (
                path,
                "needs exec or tcp: this worker serves no metrics endpoint for its probes to "
                "request, so its timings would apply to no probe",
            )
        return
    yield from _probes(health, (*path, "timings"))


def _behavior(auto: Autoscaling, path: tuple[str | int, ...]) -> Iterator[PathMsg]:
    for direction in ("scale_up", "scale_down"):
        rules: ScalingRules = getattr(auto.behavior, direction)
        old = f"{direction}_stabilization_seconds"
        if rules.stabilization_window_seconds is not None and old in auto.model_fields_set:
            yield (
                (*path, "behavior", direction, "stabilization_window_seconds"),
                f"give this or autoscaling.{old}, not both",
            )


def _metric(metric: ScalingMetric, path: tuple[str | int, ...]) -> Iterator[PathMsg]:
    allowed = TARGET_TYPES[metric.type]
    if metric.target.type not in allowed:
        hint = " (Utilization is for CPU and memory: cpu_percent, memory_percent)"
        yield (
            (*path, "target", "type"),
            f"a {metric.type} metric takes {' or '.join(allowed)}"
            + (hint if metric.target.type == "Utilization" else ""),
        )
    if metric.type == "Object" and metric.object is None:
        yield ((*path, "type"), "an Object metric needs `object` (the kind and name it describes)")
    if metric.type != "Object" and metric.object is not None:
        yield ((*path, "object"), "only an Object metric describes an object")
    source = metric.prometheus
    if source.quantile is not None and source.kind != "histogram":
        yield ((*path, "prometheus", "quantile"), "only a histogram has quantiles")
    if "window_seconds" in source.model_fields_set and source.kind == "gauge":
        yield ((*path, "prometheus", "window_seconds"), "a gauge is not a rate: no window")


def _latency(lat: Latency, path: tuple[str | int, ...]) -> Iterator[PathMsg]:
    order = [
        ("p50_ms", lat.p50_ms),
        ("p90_ms", lat.p90_ms),
        ("p95_ms", lat.p95_ms),
        ("p99_ms", lat.p99_ms),
        ("max_ms", lat.max_ms),
    ]
    present = [(k, v) for k, v in order if v is not None]
    for (lo_name, lo), (hi_name, hi) in itertools.pairwise(present):
        if lo > hi:
            yield ((*path, hi_name), f"must be >= {lo_name} ({hi:g} < {lo:g})")


def _sli(
    sli: Sli, path: tuple[str | int, ...], objective: LatencyObjective | None
) -> Iterator[PathMsg]:
    given = sli.model_fields_set
    latency = [f for f in LATENCY_FIELDS if f in given]
    for name in LATENCY_FIELDS:
        if latency and name not in given:
            yield ((*path, latency[0]), f"give {name} too: a latency SLI needs both queries")
    if objective is not None and sli.buckets is not None:
        threshold = objective.threshold_ms / 1000
        if not any(math.isclose(threshold, b, rel_tol=1e-9) for b in sli.buckets):
            yield (
                (*path, "buckets"),
                f"holds no bound at slo.latency_objective.threshold_ms ({threshold:g}s): "
                "the share of faster requests is read from that bucket",
            )
    raw = [f for f in RAW_FIELDS if f in given]
    if not raw:
        return
    for name in RAW_FIELDS:
        if name not in given:
            yield ((*path, raw[0]), f"give {name} too: the raw form needs both queries")
    for name in METRIC_FIELDS:
        if name in given:
            yield (
                (*path, name),
                "give the raw form (error_query, total_query) or this, not both",
            )
