"""The plan's workloads: HTTP services (`services.<name>`) and background workers
(`workers.<name>`) with their queues, and the replicas and resources both declare.

Field descriptions here become docs/plan.md and the editor-facing JSON Schema, so they
are written for the person filling in the plan.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from scalectl.plan.autoscaling import Autoscaling, WorkerAutoscaling
from scalectl.plan.fieldtypes import (
    MAX_REPLICAS,
    Cpu,
    Fraction,
    HttpPath,
    Image,
    Memory,
    Name,
    Port,
    Positive,
)
from scalectl.plan.patterns import Arg, EnvName
from scalectl.plan.probes import Health, WorkerHealth
from scalectl.plan.sli import Sli
from scalectl.strict import Strict

# --- services -------------------------------------------------------------------------


class Traffic(Strict):
    """`services.<name>.traffic`: the peak load to plan for and its growth."""

    peak_rps: Positive = Field(description="Requests per second at today's peak.")
    headroom: float = Field(
        1.3, ge=1, le=100, description="Growth multiplier applied to peak_rps (1.3 = 30% growth)."
    )


class Capacity(Strict):
    """`services.<name>.capacity`: what one replica was measured to hold, and how much of it to
    use."""

    per_replica_rps: Positive = Field(
        description="Measured requests/s one replica sustains at the latency target."
    )
    target_utilization: Fraction = Field(
        0.7, description="Fraction of measured capacity to plan for, in (0, 1)."
    )
    mean_latency_ms: Positive = Field(
        50, description="Mean response time at peak; Little's law turns it into in-flight requests."
    )
    db_time_ms: float = Field(
        10,
        ge=0,
        le=3_600_000,
        description="Mean time a request holds a database connection. 0: the service does "
        "not use the database (no pool, no DATABASE_URL, nothing in the connection budget).",
    )


class Quantities(Strict):
    """CPU and memory, as Kubernetes writes them."""

    cpu: Cpu = Field(description="CPU cores: 500m or 2.")
    memory: Memory = Field(description="Bytes with a suffix: 512Mi, 2Gi.")


class Resources(Strict):
    """`services.<name>.resources`: requests and limits per replica."""

    requests: Quantities
    limits: Quantities


class Replicas(Strict):
    """`services.<name>.replicas`: bounds of the replica count and the HPA."""

    min: int = Field(ge=1, le=MAX_REPLICAS, description="Never fewer (also the HPA's minReplicas).")
    max: int = Field(
        ge=1, le=MAX_REPLICAS, description="Never more; sizing above this is infeasible."
    )


class Service(Strict):
    """One HTTP tier (`services.<name>`): its image, route, load, measured capacity, resources,
    replicas, probes and app server."""

    image: Image = Field(description="Container image with a pinned tag or digest.")
    port: Port = Field(8000, description="Port the app listens on inside its container.")
    route: HttpPath = Field(
        "/", description="URL prefix the load balancer sends to this service, e.g. /admin/."
    )
    traffic: Traffic = Field(description="Peak load and growth to plan for.")
    capacity: Capacity = Field(description="What one replica was measured to hold.")
    resources: Resources = Field(description="Kubernetes-style requests and limits per replica.")
    replicas: Replicas = Field(description="Bounds for the replica count and the HPA.")
    autoscaling: Autoscaling = Field(Autoscaling(), description="HPA targets and behaviour.")
    health: Health = Field(Health(), description="Probe paths; liveness must not equal readiness.")
    graceful_shutdown_seconds: int = Field(
        30, ge=1, le=600, description="How long the app drains in-flight requests on SIGTERM."
    )
    worker_class: Literal["async", "sync"] = Field(
        "async", description="gunicorn worker type: async (uvicorn) or sync (one request each)."
    )
    processes: int | None = Field(
        None, ge=1, le=256, description="gunicorn workers per replica; sized when omitted."
    )
    pdb: bool = Field(True, description="Generate a PodDisruptionBudget (forces ≥2 replicas).")
    env: dict[EnvName, str] = Field(default_factory=dict, description="Extra environment.")
    sli: Sli = Field(
        Sli(),
        description="The series measuring requests, errors and latency; default: the "
        "reference app's http_requests_total and http_request_duration_seconds.",
    )

    @property
    def uses_database(self) -> bool:
        """Whether the service opens database connections (`capacity.db_time_ms` above 0)."""
        return self.capacity.db_time_ms > 0


# --- background workers ---------------------------------------------------------------


class Backoff(Strict):
    """A queue's retry backoff bounds."""

    min_seconds: Positive = 1
    max_seconds: Positive = 300


class Queue(Strict):
    """One queue a worker consumes: arrival rate, job duration, the wait target, retries and
    alert thresholds."""

    name: Name
    arrival_rate: Positive = Field(description="Jobs per second arriving at peak.")
    mean_duration_seconds: Positive = Field(description="Mean time a consumer spends on a job.")
    priority: Literal["high", "default", "low"] = "default"
    retries: int = Field(3, ge=0, le=100)
    backoff: Backoff = Backoff()
    target_wait_seconds: Positive = Field(
        description="Jobs should start within this time of being enqueued."
    )
    wait_quantile: Fraction = Field(
        0.95, description="Fraction of jobs that must start within target_wait_seconds."
    )
    max_depth: int | None = Field(
        None, ge=1, le=10**9, description="Alert when the queue is deeper."
    )
    max_age_seconds: Positive | None = Field(
        None, description="Alert when the oldest job is older; default 10 × target wait."
    )
    concurrency: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Jobs of this queue one replica runs at once. Only with the worker's "
        "`command` (Dramatiq's --threads is per process, not per queue), and then on every "
        "queue of the worker or none; the program reads it as WORKER_CONCURRENCY_<QUEUE>.",
    )


class WorkerMetrics(Strict):
    """`workers.<name>.metrics`: the Prometheus endpoint a worker with its own `command`
    serves. Without it such a worker is not scraped, and probed only through `health`."""

    port: Port = Field(description="Port the endpoint listens on in the container.")
    path: HttpPath = Field(
        "/metrics",
        max_length=128,
        description="Path Prometheus and the probes request: `/` then letters, digits, `/`, "
        "`_`, `.` or `-`, at most 128 characters.",
    )
    queue_gauges: bool = Field(
        False,
        description="Whether the plan's scrape targets export queue_depth, "
        "queue_oldest_job_age_seconds and queue_dead_letters labelled with this worker's "
        "queue names (as the reference app does); only then are its queue alerts and panels "
        "rendered.",
    )


class Worker(Strict):
    """One background worker (`workers.<name>`): its image, queues, processes and threads,
    replicas, autoscaling and database use."""

    image: Image = Field(description="Container image with a pinned tag or digest.")
    command: list[Arg] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The worker's argv (a list, never a shell string), e.g. [celery, -A, "
        "proj, worker]. Default: the reference app's Dramatiq worker, `dramatiq refapp.tasks` "
        "with --processes, --threads and --queues. A custom command gets WORKER_CONCURRENCY "
        "(consumers per replica) and WORKER_CONCURRENCY_<QUEUE> in its environment, and "
        "is scraped through `metrics` and probed through `health` or `metrics`.",
    )
    metrics: WorkerMetrics | None = Field(
        None,
        description="Only with `command`: its Prometheus endpoint, e.g. {port: 9191, path: "
        "/metrics}. Absent: no metrics port, scrape job, Down alert or queue alerts for this "
        "worker, and no probes unless `health` gives a check. The default Dramatiq worker "
        "always serves port 9191, /metrics.",
    )
    health: WorkerHealth = Field(
        WorkerHealth(),
        description="Its probes: a command (`exec`) or a port (`tcp`) for a worker that serves "
        "no HTTP, and their timings. Default: the metrics endpoint, when it has one; else none.",
    )
    queues: list[Queue] = Field(min_length=1, description="Queues this worker consumes.")
    processes: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker processes per replica (Dramatiq's --processes); sizing ignores it "
        "when the queues set `concurrency`.",
    )
    threads: int = Field(
        4,
        ge=1,
        le=256,
        description="Consumer threads per process (Dramatiq's --threads); also the database "
        "pool's cap. Sizing ignores it when the queues set `concurrency`.",
    )
    target_utilization: Fraction = 0.7
    db_time_fraction: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Fraction of a job's run time it holds a DB connection. 0: the worker "
        "does not use the database (no pool, no DATABASE_URL, nothing in the connection "
        "budget).",
    )
    replicas: Replicas
    autoscaling: WorkerAutoscaling = Field(
        WorkerAutoscaling(), description="HPA metrics and behaviour; default: queue depth."
    )
    resources: Resources
    graceful_shutdown_seconds: int = Field(60, ge=1, le=3600)
    env: dict[EnvName, str] = Field(default_factory=dict)

    @property
    def queue_concurrency(self) -> bool:
        """Whether the worker's queues each set their own `concurrency`."""
        return all(q.concurrency is not None for q in self.queues)

    @property
    def consumers_per_replica(self) -> int:
        """Jobs one replica runs at once: the queues' concurrencies summed when they set them,
        else processes × threads shared by every queue."""
        if self.queue_concurrency:
            return sum(q.concurrency or 0 for q in self.queues)
        return self.processes * self.threads

    @property
    def uses_database(self) -> bool:
        """Whether the worker opens database connections (`db_time_fraction` above 0)."""
        return self.db_time_fraction > 0
