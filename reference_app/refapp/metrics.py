"""Prometheus metrics in multiprocess mode: every gunicorn worker writes its own files under
PROMETHEUS_MULTIPROC_DIR and a scrape of any worker merges them (MultiProcessCollector).

Names match templates/prometheus/*.rules.yml.j2. Multiprocess mode has no default process
collector, so process memory and CPU are sampled here (see `ProcessSampler`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

import psutil
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# prometheus_client picks its value class when it is first imported, so the directory must
# exist before that: gunicorn.conf.py creates it in the master. Without it each scrape would
# report the one worker that answered it.
if not os.path.isdir(os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")):
    raise RuntimeError(
        "PROMETHEUS_MULTIPROC_DIR must name an existing directory before refapp starts "
        "(gunicorn.conf.py creates one; set it yourself for other servers)"
    )

# The 0.3/0.8/1.2 s edges sit on the latency objectives the plan renders into alerts, so
# histogram_quantile interpolates inside a bucket that ends on the objective.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 0.75, 0.8, 1, 1.2, 2.5, 5, 10)

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["route", "method", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from request start to response end",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "http_requests_in_flight", "Requests being served", multiprocess_mode="livesum"
)
DB_QUERIES = Counter("db_queries_total", "SQL statements sent", ["target"])
DB_POOL_CONNECTIONS = Gauge(
    "db_pool_connections", "Pooled connections by state", ["state"], multiprocess_mode="livesum"
)
DB_POOL_SIZE = Gauge("db_pool_size", "Connections held by the pools", multiprocess_mode="livesum")
DB_POOL_WAITING = Gauge(
    "db_pool_requests_waiting", "Requests queued for a connection", multiprocess_mode="livesum"
)
CACHE_REQUESTS = Counter("cache_requests", "Cache lookups", ["layer", "result"])
RATE_LIMITED = Counter("rate_limited_requests", "Requests refused with 429", ["limit"])
RATE_LIMIT_FAIL_OPEN = Counter(
    "rate_limit_fail_open", "Requests let through because the limiter's Redis failed"
)
LOAD_SHED = Counter("load_shed_requests", "Requests refused by load shedding", ["tier"])
# Worst state across live workers: one worker with an open breaker is worth seeing.
BREAKER_STATE = Gauge(
    "circuit_breaker_state",
    "0 closed, 1 open, 2 half-open",
    ["dependency"],
    multiprocess_mode="livemax",
)
EVENT_LOOP_LAG = Gauge(
    "event_loop_lag_seconds", "Event loop scheduling delay", multiprocess_mode="livemax"
)


_CHILDREN: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: Counter | Histogram, *labels: str) -> Any:
    """`metric.labels(*labels)`, made once per process: .labels() takes a lock and a lookup
    on every call, which the hot path pays per request. Bounded by the label values the
    callers use (route templates, statuses, fixed names)."""
    key = (id(metric), labels)  # the metrics are module-level: their ids do not change
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*labels)
    return found


# registry=None: the default registry already holds prometheus_client's own (single-process)
# collector under these names; in multiprocess mode only the files matter.
RESIDENT_MEMORY = Gauge(
    "process_resident_memory_bytes",
    "Resident memory of the workers",
    multiprocess_mode="livesum",
    registry=None,
)
# A counter (not a gauge) so a recycled worker's CPU time stays in the sum: rate() sees no
# reset when max_requests replaces a worker.
CPU_SECONDS = Counter(
    "process_cpu_seconds", "User and system CPU time of the workers", registry=None
)


class ProcessSampler:
    """Copies this process's RSS and CPU time into the multiprocess metrics."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._cpu_seen = 0.0

    def sample(self) -> None:
        with self._process.oneshot():
            RESIDENT_MEMORY.set(self._process.memory_info().rss)
            times = self._process.cpu_times()
        cpu = times.user + times.system
        if cpu > self._cpu_seen:
            CPU_SECONDS.inc(cpu - self._cpu_seen)
            self._cpu_seen = cpu


class QueueCollector(Collector):
    """Queue gauges from a snapshot taken at scrape time (by the queue side's
    refapp.queue_stats), not stored in the multiprocess files: they describe Redis, not this
    process, and a stale copy from a dead worker would lie."""

    def __init__(self, snapshot: Mapping[str, Mapping[str, float]] | None) -> None:
        self._snapshot = snapshot or {}

    def collect(self) -> Iterable[Metric]:
        families = {
            "depth": GaugeMetricFamily("queue_depth", "Messages waiting", labels=["queue"]),
            "oldest_age_seconds": GaugeMetricFamily(
                "queue_oldest_job_age_seconds",
                "Age of the oldest waiting message",
                labels=["queue"],
            ),
            "dead_letters": GaugeMetricFamily(
                "queue_dead_letters", "Messages in the dead-letter queue", labels=["queue"]
            ),
        }
        for queue, stats in sorted(self._snapshot.items()):
            for key, family in families.items():
                value = stats.get(key)
                if isinstance(value, int | float):
                    family.add_metric([queue], float(value))
        yield from families.values()


def render(queue_snapshot: Mapping[str, Mapping[str, float]] | None) -> bytes:
    """The text exposition of every worker's metrics plus the queue gauges. Blocking (reads
    files): call it in a thread."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(QueueCollector(queue_snapshot))
    return generate_latest(registry)
