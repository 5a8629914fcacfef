"""Turn a plan into numbers: replicas, processes, pools, consumers, memory. docs/sizing.md.

Services, the database and the cache are sized here; workers and their queues in
scalectl.plan.workersizing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from scalectl.plan import alerts, burnrate, ratelimits
from scalectl.plan.fieldtypes import cpu_cores
from scalectl.plan.model import Plan
from scalectl.plan.workersizing import QueueSize, WorkerSize, size_worker
from scalectl.plan.workloads import Service

MIB = 2**20


@dataclass(frozen=True)
class ServiceSize:
    """The sizing of one HTTP service: replicas from design load and per-replica budget,
    processes, pools, HPA targets and the PDB."""

    name: str
    design_rps: float  # peak_rps × headroom
    replica_budget_rps: float  # per_replica_rps × target_utilization
    required_replicas: int  # ceil(design_rps / replica_budget_rps)
    replicas: int  # required, clamped to [min_replicas, max_replicas]
    min_replicas: int  # plan min, raised to 2 where a PDB is generated
    max_replicas: int
    rps_per_replica: float  # design_rps / replicas
    in_flight_per_replica: float  # Little's law: L = λ × W
    processes: int  # gunicorn workers per replica
    pool_needed: int  # DB connections one process needs at peak
    pool_min: int
    pool_max: int
    hpa_cpu_percent: int | None
    hpa_memory_percent: int | None
    hpa_rps_per_pod: float | None
    pdb_min_available: int | None
    active_db_connections: float  # across all replicas at peak


@dataclass(frozen=True)
class DatabaseSize:
    """The database's connection budget: what the fleet may open against what the primary allows,
    and PgBouncer's pools."""

    max_connections: int
    reserved: int
    available: int  # max_connections − reserved
    client_connections: int  # Σ max replicas × processes × pool max (+ workers, relays)
    active_at_peak: int  # Little's law over the whole fleet
    pgbouncer: bool
    pgbouncer_max_client_conn: int | None
    pgbouncer_default_pool_size: int | None
    pgbouncer_reserve_pool_size: int | None
    read_replicas: int


@dataclass(frozen=True)
class CacheSize:
    """The cache's memory: data from keys and their size, maxmemory with headroom, and the
    container's memory."""

    keys: int
    bytes_per_key: int
    data_bytes: int
    maxmemory_bytes: int  # data × headroom, rounded up to MiB
    maxmemory: str  # e.g. "512mb", the redis.conf spelling
    container_memory_bytes: int  # maxmemory + 50% for fragmentation and fork copy-on-write
    eviction_policy: str


@dataclass
class Sizing:
    """Everything `size` decided for one plan and profile, with warnings and, when it cannot fit,
    why (infeasible)."""

    plan: str
    profile: str
    services: list[ServiceSize] = field(default_factory=list)
    workers: list[WorkerSize] = field(default_factory=list)
    queues: list[QueueSize] = field(default_factory=list)
    database: DatabaseSize | None = None
    cache: CacheSize | None = None
    warnings: list[str] = field(default_factory=list)
    infeasible: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        """Whether the plan fits its own limits (no infeasible reason)."""
        return not self.infeasible

    def service(self, name: str) -> ServiceSize:
        """The sizing of service `name`. Raises StopIteration for a name the plan does not have."""
        return next(s for s in self.services if s.name == name)

    def worker(self, name: str) -> WorkerSize:
        """The sizing of worker `name`. Raises StopIteration for a name the plan does not have."""
        return next(w for w in self.workers if w.name == name)

    def to_json(self) -> dict[str, Any]:
        """sizing.json: every figure, floats rounded to 4 decimals (non-finite as null), and
        `feasible`."""
        data = asdict(self)
        data["feasible"] = self.feasible
        rounded: dict[str, Any] = _rounded(data)
        return rounded


def _rounded(value: Any) -> Any:
    # Stable, readable figures in sizing.json: 4 significant decimals is plenty.
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def size(plan: Plan, profile: str = "production") -> Sizing:
    """Size `plan` for `profile` (docs/sizing.md): replicas, processes and pools of each service,
    consumers and replicas of each worker, the database's connection budget and the cache's
    memory.

    Returns the Sizing. Never raises for a plan that loaded: what cannot fit is listed in
    Sizing.infeasible, doubtful choices in Sizing.warnings.
    """
    result = Sizing(plan=plan.name, profile=profile)
    pool_min = plan.database.pool.min if plan.database else 0
    pool_max = plan.database.pool.max if plan.database else 0
    for name, svc in plan.services.items():
        # A service that does not use the database gets no pool (docs/sizing.md).
        pools = (pool_min, pool_max) if svc.uses_database else (0, 0)
        result.services.append(_service(name, svc, *pools, result))
    lb = plan.load_balancer
    if lb.max_fails > 0 and {"http_500", "http_503"} & set(lb.retries.on):
        listed = " and ".join(c for c in ("http_500", "http_503") if c in lb.retries.on)
        result.warnings.append(
            f"load_balancer.retries.on lists {listed}: nginx then counts each such answer "
            f"as a server failure, and after max_fails ({lb.max_fails}) takes the server out "
            "for fail_timeout; a 503 for shedding or a failing dependency would eject every "
            "instance at once"
        )
    result.warnings += ratelimits.warnings(lb.rate_limits)
    result.warnings += alerts.warnings(plan.alerting.alerts)
    result.warnings += burnrate.warnings(plan.alerting.burn_rate)
    for name, worker in plan.workers.items():
        worker_size, queues, infeasible = size_worker(name, worker)
        result.queues += queues
        result.infeasible += infeasible
        result.workers.append(worker_size)
    if plan.database is not None:
        result.database = _database(plan, result)
    if plan.cache is not None:
        result.cache = _cache(plan, result)
    return result


def _service(name: str, svc: Service, pool_min: int, pool_max: int, result: Sizing) -> ServiceSize:
    cap = svc.capacity
    design = svc.traffic.peak_rps * svc.traffic.headroom
    budget = cap.per_replica_rps * cap.target_utilization
    required = math.ceil(design / budget - 1e-9)
    min_replicas = svc.replicas.min
    if svc.pdb and min_replicas < 2:
        min_replicas = 2
        result.warnings.append(
            f"services.{name}: replicas.min raised to 2 so the PodDisruptionBudget "
            "can allow a disruption"
        )
    max_replicas = max(svc.replicas.max, min_replicas)
    replicas = min(max(required, min_replicas), max_replicas)
    if required > svc.replicas.max:
        result.infeasible.append(
            f"services.{name}: needs {required} replicas for {design:g} rps "
            f"({svc.traffic.peak_rps:g} peak × {svc.traffic.headroom:g} headroom) at "
            f"{budget:g} rps each ({cap.per_replica_rps:g} × {cap.target_utilization:g}), "
            f"but replicas.max is {svc.replicas.max}"
        )
    elif required == max_replicas:
        result.warnings.append(
            f"services.{name}: peak needs all {max_replicas} replicas; nothing is left "
            "for a spike beyond the headroom"
        )
    if cap.target_utilization > 0.8:
        result.warnings.append(
            f"services.{name}: target_utilization {cap.target_utilization:g} leaves little "
            "room for latency under bursts (queueing delay grows fast above 0.8)"
        )

    rps_per_replica = design / replicas
    in_flight = rps_per_replica * cap.mean_latency_ms / 1000
    cores = cpu_cores(svc.resources.limits.cpu)
    if svc.worker_class == "async":
        # One event-loop process per core; concurrency within a process is cheap.
        sized_processes = max(1, math.ceil(cores - 1e-9))
    else:
        # A sync worker serves one request at a time, so workers must cover L / ρ.
        sized_processes = max(2, math.ceil(in_flight / cap.target_utilization - 1e-9))
    processes = svc.processes or sized_processes
    if svc.processes and svc.worker_class == "sync" and svc.processes < sized_processes:
        result.warnings.append(
            f"services.{name}: {svc.processes} sync workers per replica, but "
            f"{in_flight:.1f} requests are in flight at peak; Little's law asks for "
            f"{sized_processes}"
        )

    per_process_rps = rps_per_replica / processes
    busy_connections = per_process_rps * cap.db_time_ms / 1000
    pool_needed = (
        max(1, math.ceil(busy_connections / cap.target_utilization - 1e-9))
        if svc.uses_database
        else 0
    )
    if pool_max and pool_max < pool_needed:
        result.warnings.append(
            f"services.{name}: each process needs about {pool_needed} database connections "
            f"at peak but database.pool.max is {pool_max}; requests will wait for a connection"
        )

    auto = svc.autoscaling
    rps_target = auto.rps_per_pod
    if auto.uses_request_rate and rps_target is None:
        rps_target = budget
    if auto.enabled and rps_target is not None and rps_target > cap.per_replica_rps:
        result.warnings.append(
            f"services.{name}: autoscaling.rps_per_pod {rps_target:g} is above the measured "
            f"capacity {cap.per_replica_rps:g}; the HPA would scale out after latency suffers"
        )
    if auto.enabled and auto.cpu_percent is not None:
        implied = cap.target_utilization * 100
        if abs(auto.cpu_percent - implied) > 15:
            result.warnings.append(
                f"services.{name}: autoscaling.cpu_percent {auto.cpu_percent} differs from "
                f"target_utilization {cap.target_utilization:g} by more than 15 points; "
                "the HPA and the replica count assume different loads"
            )
    return ServiceSize(
        name=name,
        design_rps=design,
        replica_budget_rps=budget,
        required_replicas=required,
        replicas=replicas,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        rps_per_replica=rps_per_replica,
        in_flight_per_replica=in_flight,
        processes=processes,
        pool_needed=pool_needed,
        pool_min=min(pool_min, pool_max) if pool_max else 0,
        pool_max=pool_max,
        hpa_cpu_percent=auto.cpu_percent if auto.enabled else None,
        hpa_memory_percent=auto.memory_percent if auto.enabled else None,
        hpa_rps_per_pod=rps_target if auto.enabled else None,
        pdb_min_available=(min_replicas - 1) if svc.pdb else None,
        active_db_connections=design * cap.db_time_ms / 1000,
    )


def _database(plan: Plan, result: Sizing) -> DatabaseSize:
    db = plan.database
    assert db is not None
    available = db.primary.max_connections - db.primary.reserved_connections
    clients = 0
    for s in result.services:
        clients += s.max_replicas * s.processes * s.pool_max
    for w in result.workers:
        spec = plan.workers[w.name]
        if spec.uses_database:
            # Each consumer thread holds at most one connection; each process of the default
            # Dramatiq command also holds its outbox relay's (docs/reference-app.md).
            relays = spec.processes if spec.command is None else 0
            clients += w.max_replicas * (w.consumers_per_replica + relays)
    active = sum(s.active_db_connections for s in result.services)
    for name, worker in plan.workers.items():
        busy = sum(q.offered_load for q in result.queues if q.worker == name)
        active += busy * worker.db_time_fraction  # busy consumers holding a connection
    # One rounding (up: a fraction of a connection is still a connection) for every figure
    # of busy connections, so the summary, the infeasible reasons and the warning agree.
    active_int = math.ceil(active - 1e-9)

    bouncer = db.pgbouncer
    max_client = pool_size = reserve = None
    if bouncer.enabled:
        reserve = min(bouncer.reserve_pool_size, max(0, available - 1))
        pool_size = available - reserve
        users = sum(s.uses_database for s in plan.services.values())
        max_client = clients + 10 * max(1, users)
    if clients > available and not bouncer.enabled:
        result.infeasible.append(
            f"database: pools may open {clients} connections (Σ max replicas × processes "
            f"× pool.max) but the primary allows {available} "
            f"({db.primary.max_connections} max_connections − "
            f"{db.primary.reserved_connections} reserved); enable database.pgbouncer, "
            "lower pool.max or replicas.max, or raise max_connections"
        )
    if active_int > available:
        result.infeasible.append(
            f"database: {active_int} connections are busy at peak (Little's law over "
            f"request rate × db_time) but only {available} are available"
        )
    elif pool_size is not None and active_int > pool_size:
        result.infeasible.append(
            f"database: {active_int} connections are busy at peak but PgBouncer's "
            f"default_pool_size is {pool_size}"
        )
    if active_int > 4 * db.primary.cores:
        result.warnings.append(
            f"database: {active_int} busy connections at peak on {db.primary.cores} cores; "
            "PostgreSQL throughput usually peaks near 2-4 active connections per core"
        )
    return DatabaseSize(
        max_connections=db.primary.max_connections,
        reserved=db.primary.reserved_connections,
        available=available,
        client_connections=clients,
        active_at_peak=active_int,
        pgbouncer=bouncer.enabled,
        pgbouncer_max_client_conn=max_client,
        pgbouncer_default_pool_size=pool_size,
        pgbouncer_reserve_pool_size=reserve,
        read_replicas=db.read_replicas,
    )


def _cache(plan: Plan, result: Sizing) -> CacheSize:
    cache = plan.cache
    assert cache is not None
    per_key = cache.mean_value_bytes + cache.mean_key_bytes + cache.per_key_overhead_bytes
    data = cache.keys * per_key
    maxmemory = math.ceil(data * cache.headroom / MIB) * MIB
    if cache.eviction_policy == "noeviction":
        result.warnings.append(
            "cache: eviction_policy noeviction makes writes fail once maxmemory is reached"
        )
    elif cache.eviction_policy.startswith("volatile") and not cache.ttl_seconds:
        result.warnings.append(
            f"cache: {cache.eviction_policy} evicts only keys with a TTL, and no ttl_seconds "
            "are set"
        )
    return CacheSize(
        keys=cache.keys,
        bytes_per_key=per_key,
        data_bytes=data,
        maxmemory_bytes=maxmemory,
        maxmemory=f"{maxmemory // MIB}mb",
        container_memory_bytes=math.ceil(maxmemory * 1.5 / MIB) * MIB,
        eviction_policy=cache.eviction_policy,
    )
