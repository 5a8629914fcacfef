"""The values templates see: the plan, its sizing, and what the profile derives from them."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from scalectl import __version__, resources
from scalectl.plan.adapter import adapter_rules
from scalectl.plan.alerts import alert_settings
from scalectl.plan.appenv import (
    DATABASE_USER,
    METRICS_DIR,
    WORKER_METRICS_PORT,
    ContainerEnv,
    database_name,
    service_env,
    worker_env,
)
from scalectl.plan.autoscaling import Direction, HpaRules
from scalectl.plan.burnrate import burn_alerts
from scalectl.plan.burntests import timing, window_proofs
from scalectl.plan.fieldtypes import cpu_cores, memory_bytes
from scalectl.plan.internal import internal_paths
from scalectl.plan.load import LoadedPlan
from scalectl.plan.probes import PROBE_KINDS, ProbeKind, ProbeTimes, ProbeTiming
from scalectl.plan.scalingmetrics import MetricDefinition, request_rate
from scalectl.plan.sizing import ServiceSize, Sizing
from scalectl.plan.sliquery import (
    SliQueries,
    dashboard_errors,
    dashboard_latency,
    dashboard_traffic,
    test_buckets,
)
from scalectl.plan.slo import Latency
from scalectl.plan.topology import topology
from scalectl.plan.workersizing import QueueSize, WorkerSize
from scalectl.plan.workloads import Queue, Service, Worker


@dataclass(frozen=True)
class ServiceView:
    """A service as templates see it: its spec, its sizing and the profile's upstreams."""

    name: str
    spec: Service
    size: ServiceSize
    upstream_servers: list[str]  # host:port entries for the nginx upstream
    latency: Latency  # the service-level latency SLO
    cpu_limit_cores: float
    memory_limit_bytes: int
    # gunicorn's graceful_timeout; Kubernetes must wait longer than preStop + this.
    prestop_seconds: int
    termination_grace_seconds: int
    env: ContainerEnv  # what the container is given (scalectl.plan.appenv)
    probes: dict[ProbeKind, ProbeTimes]  # by kind, defaults filled in
    hpa: dict[Direction, HpaRules]  # the HPA's behavior by direction
    healthcheck: ComposeHealthcheck
    sli: SliQueries  # the queries of its requests, errors and latency
    # What rps_per_pod scales on (prometheus-adapter serves it); None for a raw SLI.
    request_rate: MetricDefinition | None
    test_buckets: list[str]  # `le` of the promtool tests' histogram series, "+Inf" last


@dataclass(frozen=True)
class ComposeHealthcheck:
    """A Compose healthcheck: the readiness timings the plan sets, else a service's Compose
    defaults (10 s, 3 s, 3) or a worker's (20 s, 5 s, 3); a service check's own HTTP timeout
    is 2 s unless the plan sets one."""

    interval_seconds: int
    timeout_seconds: int
    retries: int
    http_timeout_seconds: int


def compose_healthcheck(
    given: ProbeTiming, defaults: tuple[int, int, int] = (10, 3, 3)
) -> ComposeHealthcheck:
    """The Compose healthcheck from the plan's readiness timings `given`."""
    times = given.filled(defaults)
    return ComposeHealthcheck(
        interval_seconds=times.period_seconds,
        timeout_seconds=times.timeout_seconds,
        retries=times.failure_threshold,
        http_timeout_seconds=2 if given.timeout_seconds is None else given.timeout_seconds,
    )


@dataclass(frozen=True)
class QueueView:
    """A worker queue as templates see it: its spec and its sizing."""

    spec: Queue
    size: QueueSize


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where a worker serves Prometheus metrics: in its container, and where Prometheus
    reaches it under the profile."""

    port: int  # in the container
    path: str
    scrape_port: int


def worker_metrics(spec: Worker, placed_port: int) -> MetricsEndpoint | None:
    """The metrics endpoint of a worker, or None when it has none. The default Dramatiq
    worker always has one (port 9191; `placed_port` on loopback, where each worker gets a
    port in the block after the services'); a custom `command` has one only when the plan's
    `metrics` gives it, on that port everywhere."""
    if spec.command is None:
        return MetricsEndpoint(WORKER_METRICS_PORT, "/metrics", placed_port)
    if spec.metrics is None:
        return None
    return MetricsEndpoint(spec.metrics.port, spec.metrics.path, spec.metrics.port)


def has_queue_gauges(spec: Worker) -> bool:
    """Whether Prometheus gets this worker's queue_depth, queue_oldest_job_age_seconds and
    queue_dead_letters series: the reference app's web tier exports them for the default
    Dramatiq worker's queues; for a custom `command` only the plan can say so
    (`metrics.queue_gauges`), and without them queue alerts and panels would stay empty."""
    if spec.command is None:
        return True
    return spec.metrics is not None and spec.metrics.queue_gauges


def worker_probes(spec: Worker) -> dict[ProbeKind, ProbeTimes] | None:
    """A worker's probe timings by kind, or None when it has nothing to probe: no `health`
    check and a custom command without `metrics`."""
    if spec.health.check == "metrics" and spec.command is not None and spec.metrics is None:
        return None
    return {kind: spec.health.times(kind) for kind in PROBE_KINDS}


@dataclass(frozen=True)
class WorkerView:
    """A worker fleet as templates see it: its spec, sizing and queues, and what Prometheus
    can read of it."""

    name: str
    spec: Worker
    size: WorkerSize
    queues: list[QueueView]
    termination_grace_seconds: int
    env: ContainerEnv
    metrics: MetricsEndpoint | None  # None: not scraped, no Down alert
    queue_gauges: bool  # queue alerts and panels are rendered only when True
    hpa: dict[Direction, HpaRules]  # the HPA's behavior by direction
    # By kind, defaults filled in; None: no probes (no health check and no metrics).
    probes: dict[ProbeKind, ProbeTimes] | None
    healthcheck: ComposeHealthcheck


# Distributed Locust run (templates/kubernetes/locust.yaml.j2).
LOCUST_IMAGE = "locustio/locust:2.47.0"
# The scenarios' think time is uniform 0.5-2 s (mean 1.25 s), so one simulated user sends
# at most about 0.8 requests/s (less once response time is added).
LOCUST_RPS_PER_USER = 0.8
# Requests/s one worker process (one core) is asked to generate: well under what a
# FastHttpUser core can do, so the generator stays far from saturation.
LOCUST_RPS_PER_WORKER = 500
LOCUST_MIN_WORKERS = 2
LOCUST_RAMP_SECONDS = 60


@dataclass(frozen=True)
class LoadtestView:
    """The in-cluster load test the plan renders: its target, rate, users and scenarios."""

    target: ServiceView  # the plan's first service: the one the scenarios' routes hit
    rps: float  # its design peak (peak_rps × headroom)
    users: int
    spawn_rate: int
    workers: int
    scenarios: list[tuple[str, str]]  # (file name, text) of every scenarios/*.py, sorted
    scenarios_sha256: str


LOCAL_ONLY_SCENARIOS = frozenset({"drill.py"})  # fault drills run against the local stack


def scenario_files() -> list[tuple[str, str]]:
    """The shipped scenarios as (file name, text), sorted by name."""
    folder = resources.data_dir("scenarios")
    return sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".py") and entry.is_file() and entry.name not in LOCAL_ONLY_SCENARIOS
    )


def loadtest(target: ServiceView) -> LoadtestView:
    """The load test sized for `target`'s design rate."""
    rps = target.size.design_rps
    users = max(1, math.ceil(rps / LOCUST_RPS_PER_USER))
    files = scenario_files()
    digest = hashlib.sha256()
    for name, text in files:
        digest.update(f"{name}\0{text}\0".encode())
    return LoadtestView(
        target=target,
        rps=rps,
        users=users,
        spawn_rate=max(1, math.ceil(users / LOCUST_RAMP_SECONDS)),
        workers=max(LOCUST_MIN_WORKERS, math.ceil(rps / LOCUST_RPS_PER_WORKER)),
        scenarios=files,
        scenarios_sha256=digest.hexdigest(),
    )


def build(loaded: LoadedPlan, sizing: Sizing) -> dict[str, Any]:
    """The values the templates are rendered with, for `loaded`'s plan and profile and its
    `sizing`: one dict, keys as the templates name them (`services` and `workers` hold
    ServiceView and WorkerView, with the ports of the plan's topology). Raises nothing
    for a plan that loaded and was sized (scalectl.plan.prepare)."""
    plan = loaded.plan
    layout = topology(loaded, sizing)
    objective = plan.slo.latency_objective
    threshold = None if objective is None else objective.threshold_ms / 1000
    services = []
    for (name, spec), placed in zip(plan.services.items(), layout.services, strict=True):
        prestop = 5
        size = sizing.service(name)
        services.append(
            ServiceView(
                name=name,
                spec=spec,
                size=size,
                upstream_servers=[i.address for i in placed.instances],
                latency=plan.slo.latency,
                cpu_limit_cores=cpu_cores(spec.resources.limits.cpu),
                memory_limit_bytes=memory_bytes(spec.resources.limits.memory),
                prestop_seconds=prestop,
                termination_grace_seconds=prestop + spec.graceful_shutdown_seconds + 5,
                env=service_env(plan, name, spec, size),
                probes={kind: spec.health.times(kind) for kind in PROBE_KINDS},
                hpa={d: spec.autoscaling.rules(d) for d in ("scale_up", "scale_down")},
                healthcheck=compose_healthcheck(spec.health.timings.readiness),
                sli=SliQueries(name, spec.sli),
                request_rate=request_rate(name, spec.sli),
                test_buckets=test_buckets(spec.sli, threshold),
            )
        )
    workers = []
    for (name, worker), placed_worker in zip(plan.workers.items(), layout.workers, strict=True):
        queue_views = [
            QueueView(q, next(s for s in sizing.queues if s.worker == name and s.queue == q.name))
            for q in worker.queues
        ]
        workers.append(
            WorkerView(
                name=name,
                spec=worker,
                size=sizing.worker(name),
                queues=queue_views,
                termination_grace_seconds=worker.graceful_shutdown_seconds + 10,
                env=worker_env(plan, name, worker),
                metrics=worker_metrics(worker, placed_worker.metrics_port),
                queue_gauges=has_queue_gauges(worker),
                hpa={d: worker.autoscaling.rules(d) for d in ("scale_up", "scale_down")},
                probes=worker_probes(worker),
                healthcheck=compose_healthcheck(worker.health.timings.readiness, (20, 5, 3)),
            )
        )
    slo = plan.slo
    slis = [svc.sli for svc in services]
    burn = burn_alerts(plan.alerting.burn_rate, slo.availability.period_days)
    alerts = alert_settings(plan.alerting.alerts)
    error_budget = round(1 - slo.availability.target, 10)
    # Per-window promtool cases only when the plan sets the section, so a plan without it
    # renders as before.
    per_window = "burn_rate" in plan.alerting.model_fields_set
    test_timing = timing(burn, alerts, per_window)
    return {
        "version": __version__,
        "plan": plan,
        "profile": loaded.profile,
        "profile_name": loaded.profile_name,
        "namespace": plan.k8s_namespace,
        "sizing": sizing,
        "services": services,
        "workers": workers,
        "lb": plan.load_balancer,
        "internal_paths": {svc.name: internal_paths(svc.spec) for svc in services},
        "database": plan.database,
        "cache": plan.cache,
        "slo": slo,
        "error_budget": error_budget,
        "latency_objective": objective,
        "latency_threshold": threshold,
        "latency_budget": None if objective is None else round(1 - objective.target, 10),
        "burn_alerts": burn,
        "burn_windows": [w for alert in burn for w in alert.windows],
        "burn_windows_set": any(
            plan.alerting.burn_rate.alert(a.kind).windows is not None for a in burn
        ),
        "alerting": plan.alerting,
        "dashboard_sli": {
            "traffic": dashboard_traffic(slis),
            "errors": dashboard_errors(slis),
            "latency": {q: dashboard_latency(slis, q) for q in ("0.5", "0.95", "0.99")},
        },
        "alerts": alerts,
        "test_timing": test_timing,
        "burn_proofs": window_proofs(burn, error_budget, test_timing[0]) if per_window else None,
        "latency_burn_proofs": window_proofs(
            burn, round(1 - objective.target, 10), test_timing[0], latency=True
        )
        if per_window and objective is not None
        else None,
        "burn_severity": {a.kind: a.severity for a in burn},
        "database_user": DATABASE_USER,
        "database_name": database_name(plan),
        "metrics_dir": METRICS_DIR,
        "worker_metrics_port": WORKER_METRICS_PORT,
        "loadtest": loadtest(services[0]),
        "adapter_rules": adapter_rules(plan),
        "locust_image": LOCUST_IMAGE,
        "header": (
            f"Generated by scalectl from plan '{plan.name}' "
            f"(profile {loaded.profile_name}). Edit the plan, not this file."
        ),
    }
