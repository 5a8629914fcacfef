"""The environment the reference app reads (reference_app/refapp/settings.py), from the plan.

One mapping for Kubernetes and Compose (templates loop over what this module returns and
never spell an env name themselves); `scalectl stack` shares the plan-wide part, app_env.
tests/plan/test_container_env.py reads the names the app reads from its code and fails
when one is neither rendered here nor listed in APP_DEFAULTS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scalectl.plan.datastores import Database
from scalectl.plan.model import Plan
from scalectl.plan.ratelimits import app_rate
from scalectl.plan.sizing import ServiceSize
from scalectl.plan.workloads import Service, Worker

Target = Literal["compose", "kubernetes"]

# Inside a container the app must listen on every interface: its default, 127.0.0.1, is
# the container's own loopback, which no probe, Service or balancer can reach.
CONTAINER_HOST = "0.0.0.0"
# A tmpfs (Compose) or memory emptyDir (Kubernetes) mounted here: the root filesystem is
# read-only and prometheus_client's multiprocess mode writes one file per process.
METRICS_DIR = "/run/prometheus-multiproc"
# Dramatiq's Prometheus exporter: read by Dramatiq itself, not by refapp.settings.
WORKER_METRICS_PORT = 9191
DRAMATIQ_ENV = ("dramatiq_prom_db", "dramatiq_prom_port")
# Where each target mounts the database password (templates mount it there).
PASSWORD_FILE: dict[Target, str] = {
    "compose": "/run/secrets/postgres_password",
    "kubernetes": "/run/secrets/database/password",
}
# The PostgreSQL account of the rendered Compose and PgBouncer files; the database is
# named after the plan.
DATABASE_USER = "app"

_TUNING = "tuning with no plan field; the app's default holds in a container"
# Settings the app reads that the rendered files leave at the app's default, and why.
APP_DEFAULTS: dict[str, str] = {
    "LOG_LEVEL": "info, the app's default",
    "REFAPP_DEBUG": "off: /api/debug/sleep is for local fault drills (scalectl stack sets it)",
    "DATABASE_REPLICA_URLS": (
        "the plan counts read replicas but names no addresses (docs/reference-app.md, "
        "Known gaps); set it in the service's env"
    ),
    "JOB_MAX_RETRIES": "one global Retries config; per-queue retries are a known gap",
    "JOB_MIN_BACKOFF_MS": "one global Retries config; per-queue backoff is a known gap",
    "JOB_MAX_BACKOFF_MS": "one global Retries config; per-queue backoff is a known gap",
    "OUTBOX_LISTEN": (
        "on, the app's default; rendered off for a worker behind PgBouncer's transaction or "
        "statement pooling, which delivers no notifications (the relay polls)"
    ),
    **dict.fromkeys(
        (
            "MAX_REQUESTS",
            "MAX_REQUESTS_JITTER",
            "CACHE_L1_TTL",
            "CACHE_L1_MAX_ENTRIES",
            "CACHE_LOCK_MS",
            "CACHE_LOCK_WAIT_MS",
            "SHED_MAX_LOOP_LAG_MS",
            "SHED_MAX_MEMORY_PERCENT",
            "BREAKER_FAILURE_THRESHOLD",
            "BREAKER_RESET_SECONDS",
            "BROKER_HEARTBEAT_MS",
            "BROKER_MAINTENANCE_CHANCE",
            "JOB_TIME_LIMIT_MS",
            "JOB_MAX_AGE_MS",
            "CLEANUP_INTERVAL_SECONDS",
            "CLEANUP_DELETED_AFTER_SECONDS",
            "CLEANUP_STUCK_QUEUED_SECONDS",
            "ANALYSIS_WORK_FACTOR",
            "WORKER_NICE",
            "OUTBOX_POLL_SECONDS",
            "DATABASE_CONNECT_TIMEOUT",
            "DATABASE_READ_RETRIES",
            "DATABASE_CHECK_IDLE_AFTER",
            "DATABASE_WRITE_BATCH_MAX",
            "REDIS_SOCKET_TIMEOUT",
            "REDIS_MAX_CONNECTIONS",
            "HEALTH_TIMEOUT",
            "API_KEY_CACHE_TTL",
            "API_KEY_NEGATIVE_TTL",
            "API_KEY_CACHE_MAX",
            "API_KEY_OUTAGE_TTL",
            "RATE_LIMIT_LEASE_MAX",
            "ACCESS_LOG_EVERY",
            "ACCESS_LOG_SLOW_MS",
        ),
        _TUNING,
    ),
}
# For the web tier only (gunicorn.conf.py, load shedding): a Dramatiq worker serves no HTTP,
# so workers omit them.
WEB_ONLY = ("HOST", "PORT", "WEB_CONCURRENCY", "SHED_MAX_IN_FLIGHT")


@dataclass(frozen=True)
class EnvVar:
    """One variable of a container's environment. Templates escape name and value."""

    name: str
    value: str = ""
    # Kubernetes only: the value comes from key `url` of the Secret `<plan>-<secret>`.
    secret: str | None = None
    comment: str | None = None  # one line, written above the variable


@dataclass(frozen=True)
class ContainerEnv:
    """One container's environment, as Compose and as Kubernetes write it (their backing services
    and secrets differ)."""

    compose: tuple[EnvVar, ...]
    kubernetes: tuple[EnvVar, ...]


def app_env(plan: Plan) -> list[tuple[str, str]]:
    """Plan-wide settings the reference app reads, named after the plan's fields: one
    mapping for Kubernetes, Compose and `scalectl stack` alike (refapp/settings.py)."""
    env: dict[str, str] = {}
    if plan.cache:
        for kind, ttl in plan.cache.ttl_seconds.items():
            env[f"CACHE_TTL_{kind.upper()}"] = str(ttl)
    limits = plan.load_balancer.rate_limits
    if limits.per_ip:
        env["RATE_LIMIT_PER_IP"] = app_rate(limits.per_ip)
    for tier, limit in limits.tiers.items():
        env[f"RATE_LIMIT_TIER_{tier.upper()}"] = app_rate(limit)
    env["TIER_HEADER"] = limits.tier_header
    return sorted(env.items())


def database_name(plan: Plan) -> str:
    """The application database's name: the plan's name with dashes as underscores."""
    return plan.name.replace("-", "_")


def release_id(image: str) -> str:
    """The image's tag, else its digest: what the health endpoints report as releaseId."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    return last.partition(":")[2] or digest


def shed_max_in_flight(plan: Plan, spec: Service, size: ServiceSize) -> int:
    """Requests in flight per worker from which the app refuses free-tier requests (basic
    from 1.5×, premium from 2×): half of what one worker holds at the service's measured
    capacity and the latency objective, by Little's law (per_replica_rps / processes ×
    p95), so premium keeps the whole of it. At least 4."""
    p95_seconds = (plan.slo.latency.p95_ms or 300) / 1000
    per_worker_rps = spec.capacity.per_replica_rps / max(1, size.processes)
    return max(4, math.ceil(per_worker_rps * p95_seconds / 2))


def service_env(plan: Plan, name: str, spec: Service, size: ServiceSize) -> ContainerEnv:
    """The environment of one HTTP service's container: where it listens, its sized processes and
    pool (no database settings at all when it does not use the database), and the plan-wide
    settings."""
    head = [
        ("HOST", CONTAINER_HOST),
        ("PORT", str(spec.port)),
        ("WEB_CONCURRENCY", str(size.processes)),
        ("GRACEFUL_TIMEOUT", str(spec.graceful_shutdown_seconds)),
        ("SHED_MAX_IN_FLIGHT", str(shed_max_in_flight(plan, spec, size))),
    ]
    pool = (size.pool_min, size.pool_max)
    return _container_env(plan, name, spec, head, pool)


def concurrency_env(queue: str) -> str:
    """The environment variable that holds queue `queue`'s concurrency for a custom worker
    command: WORKER_CONCURRENCY_ and the name upper-cased, '-' as '_' (queue names are DNS
    labels, so no two queues share one)."""
    return "WORKER_CONCURRENCY_" + queue.upper().replace("-", "_")


def worker_env(plan: Plan, name: str, spec: Worker) -> ContainerEnv:
    """The environment of one worker's container: its drain time, where Dramatiq's metrics
    go (the default command only) or the concurrency a custom command should run at, its
    pool capped at its threads (no database settings when it does not use the database), and
    the plan-wide settings."""
    head = [("GRACEFUL_TIMEOUT", str(spec.graceful_shutdown_seconds))]
    db = plan.database
    if spec.command is None:
        head += [
            ("dramatiq_prom_db", METRICS_DIR),
            ("dramatiq_prom_port", str(WORKER_METRICS_PORT)),
        ]
        if (
            db
            and spec.uses_database
            and db.pgbouncer.enabled
            and db.pgbouncer.pool_mode != "session"
        ):
            # The outbox relay's LISTEN outlives its transaction under this pooling, so no
            # notification would reach it: it polls instead.
            head.append(("OUTBOX_LISTEN", "0"))
    else:
        # A custom program cannot be given --threads; it reads the concurrency sizing
        # counted on from here.
        head.append(("WORKER_CONCURRENCY", str(spec.consumers_per_replica)))
        head += [
            (concurrency_env(q.name), str(q.concurrency))
            for q in spec.queues
            if q.concurrency is not None
        ]
    # Each consumer thread holds at most one connection (as sizing counts them), so the
    # per-process pool is capped at the thread count.
    pool = (min(db.pool.min, spec.threads) if db else 0, spec.threads)
    return _container_env(plan, name, spec, head, pool)


def _container_env(
    plan: Plan,
    name: str,
    spec: Service | Worker,
    head: list[tuple[str, str]],
    pool: tuple[int, int],
) -> ContainerEnv:
    generated = [
        *head,
        ("SERVICE_NAME", name),
        ("RELEASE_ID", release_id(spec.image)),
        ("PROMETHEUS_MULTIPROC_DIR", METRICS_DIR),
    ]
    # A workload that does not use the database gets none of its settings, so it cannot
    # open connections the budget does not count.
    db = plan.database if spec.uses_database else None
    if db:
        generated += [
            ("DATABASE_POOL_MIN", str(pool[0])),
            ("DATABASE_POOL_MAX", str(pool[1])),
            ("DATABASE_POOL_TIMEOUT", f"{db.pool.acquire_timeout_seconds:g}"),
            ("DATABASE_STATEMENT_TIMEOUT_MS", str(db.pool.statement_timeout_ms)),
        ]
    generated += app_env(plan)
    is_worker = isinstance(spec, Worker)
    return ContainerEnv(
        compose=_finish(spec, generated, _compose_backing(plan, db)),
        kubernetes=_finish(spec, generated, _kubernetes_backing(plan, db, is_worker)),
    )


def _compose_backing(plan: Plan, db: Database | None) -> list[EnvVar]:
    out = []
    if db:
        host = f"pgbouncer:{db.pgbouncer.port}" if db.pgbouncer.enabled else "postgres:5432"
        url = f"postgresql://{DATABASE_USER}@{host}/{database_name(plan)}"
        no_password = (
            "No password in the URL: the app reads DATABASE_PASSWORD_FILE (a Compose secret)."
        )
        out += [
            EnvVar("DATABASE_URL", url, comment=no_password),
            EnvVar("DATABASE_PASSWORD_FILE", PASSWORD_FILE["compose"]),
        ]
    if plan.cache:
        out.append(EnvVar("REDIS_URL", "redis://redis:6379/0"))
    if plan.workers:
        # Never the evicting cache, or queued jobs can vanish.
        out.append(EnvVar("BROKER_URL", "redis://broker:6379/0"))
    return out


def _kubernetes_backing(plan: Plan, db: Database | None, is_worker: bool) -> list[EnvVar]:
    out = []
    if db:
        out.append(EnvVar("DATABASE_PASSWORD_FILE", PASSWORD_FILE["kubernetes"]))
    if plan.workers:
        comment = (
            "The Dramatiq broker (Redis): never the evicting cache, or queued jobs can vanish."
            if is_worker
            else "The Dramatiq broker (Redis), read for queue figures: never the evicting cache."
        )
        out.append(EnvVar("BROKER_URL", secret="broker", comment=comment))
    if db:
        no_password = (
            "The URL carries no password: DATABASE_PASSWORD_FILE points at the mounted Secret key."
        )
        out.append(EnvVar("DATABASE_URL", secret="database", comment=no_password))
    if plan.cache:
        out.append(EnvVar("REDIS_URL", secret="redis"))
    return out


def _finish(
    spec: Service | Worker, generated: list[tuple[str, str]], backing: list[EnvVar]
) -> tuple[EnvVar, ...]:
    """A key in the plan's env replaces the generated one; the plan's env comes last."""
    ours = [EnvVar(k, v) for k, v in generated] + backing
    return tuple(
        [var for var in ours if var.name not in spec.env]
        + [EnvVar(k, v) for k, v in sorted(spec.env.items())]
    )
