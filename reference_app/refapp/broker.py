"""The Dramatiq broker: Redis, with the middleware that gives the queue its guarantees.

Queues (one Redis list each, plus Dramatiq's `<name>.DQ` delay queue for retries and
`<name>.XQ` dead letters):

    analyse-high   analyse jobs of priority "high" submissions
    analyse        analyse jobs of priority "default" submissions
    analyse-low    analyse jobs of priority "low" submissions
    render         report rendering, enqueued once an analysis is committed
    cleanup        the periodic cleanup (purge soft-deleted rows, re-enqueue stuck jobs)

Priority is by separate queues, so a deployment can give the high tier its own workers
(`--queues analyse-high`) and high work never sits behind a low backlog; a worker that
consumes several tiers also runs the higher tier first among the messages it has fetched
(actor priorities in refapp.tasks).

Redelivery of jobs whose worker died (SIGKILL, OOM, node loss): a fetched message sits in
the worker's ack set until acked; another worker's broker call moves it back to its queue
once the dead worker's heartbeat is `heartbeat_timeout` old, but only when that call runs
the maintenance step, with probability `maintenance_chance` per million (Dramatiq's default
of 1,000 per million left killed jobs waiting for minutes).

Prometheus: Dramatiq's exporter listens on $dramatiq_prom_host:$dramatiq_prom_port
(0.0.0.0:9191 by default) and aggregates its worker processes from $dramatiq_prom_db.
Dramatiq reads these env variables itself when this module imports its Prometheus
middleware. Several `dramatiq` commands on one host (the loopback stack) need a distinct
port *and* a distinct prom_db directory each, or they collide or count each other.
"""

from __future__ import annotations

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)
from dramatiq.middleware.prometheus import Prometheus

from refapp import settings

NAMESPACE = "dramatiq"  # Redis key prefix, RedisBroker's default; queue_stats reads the same keys

QUEUE_HIGH = "analyse-high"
QUEUE_DEFAULT = "analyse"
QUEUE_LOW = "analyse-low"
QUEUE_RENDER = "render"
QUEUE_CLEANUP = "cleanup"
QUEUES = (QUEUE_HIGH, QUEUE_DEFAULT, QUEUE_LOW, QUEUE_RENDER, QUEUE_CLEANUP)

# submissions.priority -> the analyse queue of that tier
ANALYSE_QUEUES = {"high": QUEUE_HIGH, "default": QUEUE_DEFAULT, "low": QUEUE_LOW}

# Broker calls are short Lua scripts (no blocking pops: consumers poll), so a stalled Redis
# should surface as an error within seconds, not hang a web request calling enqueue().
SOCKET_TIMEOUT_SECONDS = 5.0


def middleware(cfg: settings.Settings) -> list[Middleware]:
    """Dramatiq's default stack, configured from settings, plus the Prometheus exporter."""
    return [
        Prometheus(),
        AgeLimit(max_age=cfg.job_max_age_ms or None),
        TimeLimit(time_limit=cfg.job_time_limit_ms),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        # Exponential backoff: min_backoff × 2^retries with jitter, capped at max_backoff.
        Retries(
            max_retries=cfg.job_max_retries,
            min_backoff=cfg.job_min_backoff_ms,
            max_backoff=cfg.job_max_backoff_ms,
        ),
    ]


def build(cfg: settings.Settings | None = None) -> RedisBroker:
    cfg = cfg or settings.get()
    # Connections are lazy: without BROKER_URL (a unit test importing the web app) this
    # fails at the first enqueue, which the web tier already treats as "sweep it later".
    client = redis.Redis.from_url(
        cfg.broker_url or "redis://127.0.0.1:6379/0",
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        client=client,
        namespace=NAMESPACE,
        middleware=middleware(cfg),
        heartbeat_timeout=cfg.broker_heartbeat_ms,
        maintenance_chance=cfg.broker_maintenance_chance,
    )
    # Declared up front (not only through actors) so every tier has a consumer in workers
    # whose --queues name it, and so enqueue() can route to any of them.
    for name in QUEUES:
        broker.declare_queue(name)
    return broker


broker = build()
dramatiq.set_broker(broker)
