"""The capacity plan, version 1: typed, immutable, and the source of `scalectl plan schema`.

Field descriptions here become docs/plan.md and the editor-facing JSON Schema, so they
are written for the person filling in the plan.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from scalectl.plan.patterns import Cidr, EndpointKey, EnvName, ServerName, TtlKind, Url
from scalectl.strict import Strict

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# fullmatch with ASCII digits: "$" accepted "500m\n", which then crashed cpu_cores (exit 3,
# tests/hostile/corpus.py "cpu-newline"), and \d accepts any Unicode digit.
_CPU = re.compile(r"[0-9]+(\.[0-9]+)?|[0-9]+m")
_MEM = re.compile(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?")
_MEM_FACTORS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def _cpu(value: str) -> str:
    if not _CPU.fullmatch(value):
        raise ValueError("must be a Kubernetes CPU quantity such as 500m or 2")
    return value


def _memory(value: str) -> str:
    if not _MEM.fullmatch(value):
        raise ValueError("must be a Kubernetes memory quantity such as 512Mi or 2Gi")
    return value


def cpu_cores(value: str) -> float:
    """A Kubernetes CPU quantity as cores: 500m is 0.5."""
    return int(value[:-1]) / 1000 if value.endswith("m") else float(value)


def memory_bytes(value: str) -> int:
    """A Kubernetes memory quantity (512Mi, 2Gi, 1G) as bytes."""
    match = re.match(r"^(\d+(?:\.\d+)?)([A-Za-z]*)$", value)
    assert match, value
    return int(float(match.group(1)) * _MEM_FACTORS[match.group(2)])


# An image reference as the distribution spec's grammar allows it (reference/regexp.go),
# minus IPv6 registries: the name reaches Compose and Kubernetes files, so only this shape.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?/)?{_PATH_PART}(?:/{_PATH_PART})*"
    r"(?::(?P<tag>\w[\w.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?",
    re.ASCII,
)


def _pinned_image(value: str) -> str:
    match = _IMAGE.fullmatch(value)  # not match(): "$" would accept a trailing newline
    if not match:
        raise ValueError(
            "must be an image reference such as ghcr.io/acme/api:1.4.2 (lowercase repository, "
            "a tag and/or an @sha256: digest)"
        )
    if match["digest"]:
        return value
    if not match["tag"]:
        raise ValueError("must pin a tag or digest, such as ghcr.io/acme/api:1.4.2")
    if match["tag"] == "latest":
        raise ValueError("must not use the moving tag 'latest'; pin a version or digest")
    return value


Cpu = Annotated[str, AfterValidator(_cpu)]
Memory = Annotated[str, AfterValidator(_memory)]
Image = Annotated[str, AfterValidator(_pinned_image)]
Name = Annotated[str, Field(pattern=DNS_LABEL)]
Fraction = Annotated[float, Field(gt=0, lt=1)]
# Finite, with a ceiling: inf or a 400-digit float would reach math.ceil and overflow.
Positive = Annotated[float, Field(gt=0, le=1e9)]
MAX_REPLICAS = 10_000
Port = Annotated[int, Field(ge=1, le=65535)]
HttpPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9/_.\-]*$")]


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
        10, ge=0, le=3_600_000, description="Mean time a request holds a database connection."
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


class Autoscaling(Strict):
    """`services.<name>.autoscaling`: the HPA's targets and stabilization windows."""

    enabled: bool = True
    cpu_percent: int | None = Field(70, ge=1, le=100, description="HPA average CPU target.")
    memory_percent: int | None = Field(None, ge=1, le=100)
    rps_per_pod: Positive | None = Field(
        None,
        description="HPA pods metric target; default per_replica_rps × target_utilization.",
    )
    scale_up_stabilization_seconds: int = Field(0, ge=0, le=3600)
    scale_down_stabilization_seconds: int = Field(300, ge=0, le=3600)


class Health(Strict):
    """`services.<name>.health`: the paths of the liveness, readiness and startup probes."""

    liveness: HttpPath = "/health"
    readiness: HttpPath = "/health/ready"
    startup: HttpPath = "/health"


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


class Worker(Strict):
    """One background worker (`workers.<name>`): its image, queues, processes and threads,
    replicas and database use."""

    image: Image = Field(description="Container image with a pinned tag or digest.")
    queues: list[Queue] = Field(min_length=1, description="Queues this worker consumes.")
    processes: int = Field(1, ge=1, le=64, description="Worker processes per replica.")
    threads: int = Field(4, ge=1, le=256, description="Consumer threads per process.")
    target_utilization: Fraction = 0.7
    db_time_fraction: float = Field(
        1.0, ge=0, le=1, description="Fraction of a job's run time it holds a DB connection."
    )
    replicas: Replicas
    resources: Resources
    graceful_shutdown_seconds: int = Field(60, ge=1, le=3600)
    env: dict[EnvName, str] = Field(default_factory=dict)


# --- data stores ------------------------------------------------------------------------


class Primary(Strict):
    """`database.primary`: the primary's cores and connection limits."""

    cores: int = Field(ge=1, le=1024, description="CPU cores of the primary.")
    max_connections: int = Field(ge=1, le=100000)
    reserved_connections: int = Field(
        10, ge=0, le=100000, description="Kept free for superusers, replication and migrations."
    )


class Pool(Strict):
    """`database.pool`: each app process's connection pool and statement timeout."""

    min: int = Field(1, ge=0, le=10000, description="Connections each process keeps open.")
    max: int = Field(10, ge=1, le=10000, description="Most connections one process may open.")
    acquire_timeout_seconds: Positive = 5
    statement_timeout_ms: int = Field(5000, ge=1, le=86_400_000)


class PgBouncer(Strict):
    """`database.pgbouncer`: whether a PgBouncer sits in front of the primary, and how it pools."""

    enabled: bool = False
    pool_mode: Literal["transaction", "session", "statement"] = "transaction"
    port: Port = 6432
    reserve_pool_size: int = Field(5, ge=0, le=10000)


class Database(Strict):
    """`database`: PostgreSQL, its primary, read replicas, pools and PgBouncer."""

    image: Image = "postgres:16.4"
    primary: Primary
    read_replicas: int = Field(0, ge=0, le=32, description="Streaming replicas for reads.")
    pool: Pool = Pool()
    pgbouncer: PgBouncer = PgBouncer()


EvictionPolicy = Literal[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
]


class Cache(Strict):
    """`cache`: the Redis cache, sized from its keys and their size, with its eviction policy and
    TTLs."""

    image: Image = "redis:7.4"
    keys: int = Field(ge=1, le=10**12, description="Keys held at peak.")
    # Redis refuses strings over 512 MB; the key and value bounds are that limit.
    mean_value_bytes: int = Field(ge=1, le=512 * 2**20)
    mean_key_bytes: int = Field(40, ge=1, le=512 * 2**20)
    per_key_overhead_bytes: int = Field(
        80,
        ge=0,
        le=2**20,
        description="Redis's own bookkeeping per key (dict entry, object headers).",
    )
    headroom: float = Field(1.3, ge=1, le=100)
    ttl_seconds: dict[TtlKind, Annotated[int, Field(ge=1, le=31_536_000)]] = Field(
        default_factory=dict, description="TTL per content type, e.g. {submission: 300}."
    )
    eviction_policy: EvictionPolicy = "allkeys-lru"


# --- load balancer ----------------------------------------------------------------------


class Timeouts(Strict):
    """`load_balancer.timeouts`: nginx's timeouts towards clients and upstreams."""

    connect_seconds: Positive = 5
    read_seconds: Positive = 60
    send_seconds: Positive = 60
    client_body_seconds: Positive = 15
    keepalive_seconds: Positive = 65


class RateLimit(Strict):
    """One rate limit: requests per second and the burst allowed above it."""

    rps: Positive
    burst: int = Field(0, ge=0, le=1_000_000)


class RateLimits(Strict):
    """`load_balancer.rate_limits`: per client address, and per API key by tier."""

    per_ip: RateLimit | None = None
    tier_header: str = Field("X-API-Tier", pattern=r"^[A-Za-z0-9-]+$")
    tiers: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], RateLimit] = Field(
        default_factory=dict, description="Requests/s per API key, by tier name."
    )


RetryCondition = Literal["error", "timeout", "http_500", "http_502", "http_503", "http_504"]
# Not http_503: nginx counts every status it retries on as a server failure (max_fails),
# so an app answering 503 to shed load or to fail fast while a dependency is down would be
# taken out of rotation, every instance at once (`scalectl drill postgres-outage` found it).
_DEFAULT_RETRY_ON: tuple[RetryCondition, ...] = ("error", "timeout", "http_502", "http_504")


class Retries(Strict):
    """`load_balancer.retries`: when nginx tries another upstream, how often and for how long."""

    tries: int = Field(2, ge=1, le=10)
    timeout_seconds: Positive = 10
    on: list[RetryCondition] = Field(default_factory=lambda: list(_DEFAULT_RETRY_ON))


MAX_NETWORKS = 256
# Loopback and private ranges (RFC 1918, RFC 4193): the local stack and in-cluster callers.
PRIVATE_NETWORKS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)


class LoadBalancer(Strict):
    """`load_balancer`: nginx in front of the services: balancing, failure handling, timeouts,
    limits and trusted networks."""

    image: Image = "nginx:1.27"
    algorithm: Literal["least_conn", "round_robin", "ip_hash"] = "least_conn"
    max_fails: int = Field(3, ge=0, le=1000)
    fail_timeout_seconds: Positive = 10
    keepalive: int = Field(
        32, ge=0, le=100_000, description="Idle upstream connections kept per worker."
    )
    timeouts: Timeouts = Timeouts()
    rate_limits: RateLimits = RateLimits()
    retries: Retries = Retries()
    client_max_body_size: str = Field("10m", pattern=r"^[0-9]+[kmg]?$")
    worker_connections: int = Field(4096, ge=64, le=1_000_000)
    max_connections_per_ip: int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="Requests one client address may have in flight at once (limit_conn); "
        "more are answered 429.",
    )
    trusted_proxies: list[Cidr] = Field(
        default_factory=list,
        max_length=MAX_NETWORKS,
        description=f"Proxies in front of nginx, as CIDRs (at most {MAX_NETWORKS}): the "
        "client address is taken from X-Forwarded-For only as they wrote it. Empty: the peer "
        "address is the client. See docs/nginx.md.",
    )
    internal_networks: list[Cidr] = Field(
        default_factory=lambda: list(PRIVATE_NETWORKS),
        max_length=MAX_NETWORKS,
        description=f"Client networks, as CIDRs (at most {MAX_NETWORKS}), that may call "
        "/metrics, /docs, /redoc, /openapi.json and /health/* (but the liveness and startup "
        "paths) below each service's route; others get 403. Default: loopback and private "
        f"ranges ({', '.join(PRIVATE_NETWORKS)}).",
    )


# --- SLOs -------------------------------------------------------------------------------


def _warmup(value: str) -> str:
    from scalectl.duration import parse_duration

    parse_duration(value, allow_zero=True)  # its ValueError names the expected forms
    return value


def _number_as_text(value: object) -> object:
    # `warmup: 10` in YAML is an int: the duration grammar reads a bare number as seconds.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


# A load test's warm-up, in the duration grammar of `scalectl loadtest -t`: 10s, 1m, 90.
Warmup = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_warmup)]


class Availability(Strict):
    """`slo.availability`: the fraction of requests that succeed over a period (for alerting)."""

    target: Fraction = Field(description="Fraction of requests that succeed, e.g. 0.999.")
    period_days: int = Field(30, ge=1, le=366)


class Latency(Strict):
    """Latency objectives in milliseconds: any of p50, p90, p95, p99 and max."""

    p50_ms: Positive | None = None
    p90_ms: Positive | None = None
    p95_ms: Positive | None = None
    p99_ms: Positive | None = None
    max_ms: Positive | None = None


class EndpointSlo(Strict):
    """`slo.endpoints.<request>`: objectives of one endpoint that override the global ones."""

    latency: Latency | None = None
    error_rate: float | None = Field(None, ge=0, lt=1)
    min_throughput_rps: Positive | None = None


class Slo(Strict):
    """`slo`: availability, latency, error rate and throughput objectives, per endpoint overrides
    and the load-test warm-up."""

    availability: Availability
    latency: Latency = Latency(p95_ms=300, p99_ms=1000)
    error_rate: float = Field(0.01, ge=0, lt=1, description="Largest acceptable failed fraction.")
    min_throughput_rps: Positive | None = None
    endpoints: dict[EndpointKey, EndpointSlo] = Field(
        default_factory=dict,
        description="Overrides per endpoint, keyed by request name such as 'GET /api/stats'.",
    )
    warmup: Warmup | None = Field(
        None,
        description="Load-test warm-up such as 10s: the first seconds of `scalectl loadtest "
        "--plan` send load but are left out of the SLOs; part of -t (`--warmup` overrides).",
    )


# --- alerting and profiles --------------------------------------------------------------


class Alerting(Strict):
    """`alerting`: where Alertmanager sends pages and tickets, and where runbooks live."""

    page_webhook_url: Url = "http://127.0.0.1:9095/page"
    ticket_webhook_url: Url = "http://127.0.0.1:9095/ticket"
    runbook_base_url: Url = "https://runbooks.example.com/scalectl"


class Profile(Strict):
    """`profiles.<name>`: how the plan is deployed (loopback ports or DNS), where nginx listens,
    and overrides merged over the plan."""

    upstreams: Literal["loopback", "dns"] = Field(
        description="loopback: app instances on 127.0.0.1 ports (scalectl stack); "
        "dns: service names resolved by compose or Kubernetes."
    )
    listen: str = Field("0.0.0.0:80", pattern=r"^[0-9.]+:[0-9]+$|^\[[0-9a-f:]+\]:[0-9]+$")
    base_port: Port = Field(18000, description="loopback: first app instance port.")
    instances: int | None = Field(
        None,
        ge=1,
        le=64,
        description="loopback: app instances per service (default: min replicas).",
    )
    server_name: ServerName = "_"
    overrides: dict[str, object] = Field(
        default_factory=dict, description="A partial plan merged over the base plan."
    )


class Plan(Strict):
    """A capacity plan (version 1): services, workers, database, cache, load balancer, SLOs,
    alerting and profiles."""

    version: Literal[1] = Field(description="Plan format version; always 1 for now.")
    name: Name = Field(description="The application's name: a DNS label.")
    namespace: Name | None = Field(None, description="Kubernetes namespace; default: name.")
    services: dict[Name, Service] = Field(min_length=1, description="HTTP tiers by name.")
    workers: dict[Name, Worker] = Field(
        default_factory=dict, description="Background queue consumers by name."
    )
    database: Database | None = None
    cache: Cache | None = None
    load_balancer: LoadBalancer = LoadBalancer()
    slo: Slo = Field(description="Targets reused by loadtest gates and alert rules.")
    alerting: Alerting = Alerting()
    kubernetes_version: str = Field(
        "1.30.0", pattern=r"^1\.[0-9]+\.[0-9]+$", description="Manifests are validated against it."
    )
    profiles: dict[Name, Profile] = Field(
        default_factory=dict,
        description="Named variants; 'local' and 'production' exist even when not listed.",
    )

    @property
    def k8s_namespace(self) -> str:
        """The Kubernetes namespace: `namespace`, else the plan's name."""
        return self.namespace or self.name
