"""How each member of the local stack is started: PostgreSQL, the cache and broker Redis,
every app instance and queue worker, nginx and Prometheus. One description per kind, built
by `up` and again by `restart_member`, so a restarted member runs exactly as `up` started
it (command, environment, port, data directory and log)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import psutil

from scalectl.errors import CheckFailed
from scalectl.plan import Prepared
from scalectl.plan.topology import Instance, Topology, WorkerTopology, topology
from scalectl.plan.validate import which
from scalectl.stack import credentials, servers
from scalectl.stack.environment import app_dir, base_env
from scalectl.stack.process import identity, spawn
from scalectl.stack.servers import Server
from scalectl.stack.state import Member, StackState

CACHE = "redis"  # the member names of the two Redis servers
BROKER = "broker"


@dataclass(frozen=True)
class Launch:
    """A member started from its argv: an app instance, a queue worker, nginx or
    Prometheus."""

    name: str
    kind: str  # app | worker | nginx | prometheus
    argv: list[str]
    log: Path
    port: int
    health_url: str
    url: str | None = None
    env: dict[str, str] | None = None  # None: the allowlisted part of ours (process.spawn)
    cwd: Path | None = None
    metrics_dir: Path | None = None
    drain_seconds: float | None = None

    def spawn(self) -> psutil.Process:
        """Start the process (detached, output appended to its log) and return it."""
        if self.metrics_dir is not None:
            # prometheus_client multiprocess files of an earlier run would skew the counters.
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            self.metrics_dir.mkdir(parents=True)
        return spawn(self.argv, log=self.log, env=self.env, cwd=self.cwd)

    def member(self, proc: psutil.Process) -> Member:
        """The state's record of `proc`, started by `spawn`."""
        exe, cmdline = identity(proc, self.argv)
        return Member(
            self.name,
            self.kind,
            proc.pid,
            proc.create_time(),
            str(self.log),
            self.port,
            health_url=self.health_url,
            url=self.url,
            drain_seconds=self.drain_seconds,
            exe=exe,
            cmdline=cmdline,
        )

    def start(self) -> Member:
        """Start the process; return its record (it may not be healthy yet)."""
        return self.member(self.spawn())


@dataclass(frozen=True)
class PostgresLaunch:
    """The stack's PostgreSQL: its data directory, log, password and size."""

    data_dir: Path
    log: Path
    password: str
    boundary: Path  # the state dir: what may be opened up for its account (as root)
    max_connections: int
    port: int | None = None  # None: a free one

    name: ClassVar[str] = "postgres"

    def serve(self) -> Server:
        """Start PostgreSQL and return it, ready for connections; ServerError if it
        does not start."""
        return servers.start_postgres(
            self.data_dir,
            self.port,
            max_connections=self.max_connections,
            log=self.log,
            password=self.password,
            boundary=self.boundary,
        )

    def member(self, server: Server) -> Member:
        """The state's record of `server`, started by `serve`."""
        return _server_member(self.name, server)

    def start(self) -> Member:
        """Start PostgreSQL; return its record. ServerError if it does not start."""
        return self.member(self.serve())


@dataclass(frozen=True)
class RedisLaunch:
    """One of the stack's Redis servers: the cache or the queue's broker."""

    name: str  # CACHE | BROKER
    data_dir: Path
    log: Path
    password: str
    port: int | None = None  # None: a free one
    maxmemory: str | None = None
    policy: str | None = None
    persist: bool = False

    def serve(self) -> Server:
        """Start Redis and return it, answering; ServerError if it does not start."""
        return servers.start_redis(
            self.data_dir,
            self.port,
            log=self.log,
            maxmemory=self.maxmemory,
            policy=self.policy,
            persist=self.persist,
            password=self.password,
        )

    def member(self, server: Server) -> Member:
        """The state's record of `server`, started by `serve`."""
        return _server_member(self.name, server)

    def start(self) -> Member:
        """Start Redis; return its record. ServerError if it does not start."""
        return self.member(self.serve())


MemberLaunch = Launch | PostgresLaunch | RedisLaunch


def _server_member(name: str, server: Server) -> Member:
    exe, cmdline = identity(server.process())
    return Member(
        name,
        server.name,  # the kind: postgres | redis
        server.pid,
        server.create_time,
        str(server.log),
        server.port,
        url=server.public_url,
        exe=exe,
        cmdline=cmdline,
    )


def postgres_launch(prepared: Prepared, root: Path, port: int | None = None) -> PostgresLaunch:
    """PostgreSQL for the stack in state dir `root`, with room for every client the plan
    sizes. InputError when the state dir's password file is missing or not private."""
    return PostgresLaunch(
        root / "postgres" / "data",
        root / "logs" / "postgres.log",
        credentials.password(root, "postgres"),
        boundary=root,
        max_connections=max(200, connections_needed(prepared) + 20),
        port=port,
    )


def redis_launch(prepared: Prepared, root: Path, name: str, port: int | None = None) -> RedisLaunch:
    """Redis `name` for the stack in state dir `root`: CACHE, sized and evicting as the
    plan says, or BROKER. InputError when its password file is missing or not private."""
    plan, sizing = prepared.loaded.plan, prepared.sizing
    cache = name == CACHE
    return RedisLaunch(
        name,
        root / name / "data",
        root / "logs" / f"{name}.log",
        credentials.password(root, name),
        port,
        maxmemory=sizing.cache.maxmemory if cache and sizing.cache else None,
        # Queued jobs must never be evicted: the broker is a separate, noeviction Redis. It
        # keeps its messages across down / up, so a job cut off by the end of a worker's
        # drain window is redelivered by the next stack rather than lost (docs/stack.md).
        policy=(plan.cache.eviction_policy if plan.cache else None) if cache else "noeviction",
        persist=not cache,
    )


def app_launch(
    prepared: Prepared, state: StackState, instance: Instance, env: Mapping[str, str]
) -> Launch:
    """One gunicorn cluster of the reference app: `instance` of its service, on its own
    port. InputError when a password file of the state dir is missing or not private."""
    root = Path(state.state_dir)
    spec = prepared.loaded.plan.services[instance.service]
    size = prepared.sizing.service(instance.service)
    name, port = instance.name, instance.port
    metrics_dir = root / "metrics" / name
    # Locally every instance shares this machine's cores.
    cores = os.cpu_count() or 1
    app_env = {
        **base_env(prepared, state, env),
        "SERVICE_NAME": instance.service,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(min(size.processes, cores)),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "RELEASE_ID": f"local-{name}",
        # This service's own drain window (app_environment has the first service's).
        "GRACEFUL_TIMEOUT": str(spec.graceful_shutdown_seconds),
    }
    argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "refapp.main:app"]
    return Launch(
        name,
        "app",
        argv,
        root / "logs" / f"{name}.log",
        port,
        health_url=f"http://127.0.0.1:{port}/health/ready",
        url=f"http://127.0.0.1:{port}",
        env=app_env,
        cwd=app_dir(),
        metrics_dir=metrics_dir,
        drain_seconds=spec.graceful_shutdown_seconds,
    )


def worker_member(name: str) -> str:
    """The stack's member name for the plan's worker `name`."""
    return f"worker-{name}"


def worker_launch(
    prepared: Prepared, state: StackState, worker: WorkerTopology, env: Mapping[str, str]
) -> Launch:
    """The Dramatiq worker for the plan's worker `worker.name`, its exporter on
    `worker.metrics_port`. InputError when a password file of the state dir is missing
    or not private."""
    root = Path(state.state_dir)
    spec = prepared.loaded.plan.workers[worker.name]
    cores = os.cpu_count() or 1
    prom_db = root / "metrics" / worker_member(worker.name)
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "refapp.tasks",
        "--processes",
        str(min(spec.processes, cores)),
        "--threads",
        str(spec.threads),
        "--worker-shutdown-timeout",
        str(spec.graceful_shutdown_seconds * 1000),
        "--queues",
        *[q.name for q in spec.queues],
    ]
    worker_env = {
        **base_env(prepared, state, env),
        "SERVICE_NAME": worker.name,
        "dramatiq_prom_host": "127.0.0.1",
        "dramatiq_prom_port": str(worker.metrics_port),
        "dramatiq_prom_db": str(prom_db),
        # How often an idle worker thread or consumer wakes up (default 1000 ms); each one
        # notices a stop only then, so it bounds how long an idle worker takes to stop.
        "dramatiq_worker_timeout": "500",
        # One machine: the jobs share the app's cores, and requests must come first. Not 19:
        # with the session niced too, a busy machine (a parallel test suite) starved the
        # jobs past a drill's 90 s wait; 5 cost the closed-loop mix 3% against 19.
        "WORKER_NICE": "5",
    }
    name = worker_member(worker.name)
    return Launch(
        name,
        "worker",
        argv,
        root / "logs" / f"{name}.log",
        worker.metrics_port,
        health_url=f"http://127.0.0.1:{worker.metrics_port}/metrics",
        env=worker_env,
        cwd=app_dir(),
        metrics_dir=prom_db,
        drain_seconds=spec.graceful_shutdown_seconds,
    )


def nginx_launch(nginx: str, layout: Topology, state: StackState) -> Launch:
    """nginx (the executable `nginx`) on the plan's listen address, run from its prefix
    <state dir>/nginx, whose nginx.conf `up` copied there. Its drain window is the longest
    of the app instances `state` records: its requests in flight are theirs."""
    root = Path(state.state_dir)
    prefix = root / "nginx"
    conf = prefix / "conf" / "nginx.conf"
    base = f"http://{layout.listen}"
    return Launch(
        "nginx",
        "nginx",
        [nginx, "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"],
        root / "logs" / "nginx.log",
        layout.listen_port,
        health_url=f"{base}/nginx/health",
        url=base,
        drain_seconds=max(
            (m.drain_seconds or 0.0 for m in state.members if m.kind == "app"), default=0.0
        ),
    )


def prometheus_launch(prometheus: str, root: Path, port: int) -> Launch:
    """Prometheus (the executable `prometheus`) on 127.0.0.1:`port`, with the
    configuration rendered into state dir `root` and its data below it."""
    argv = [
        prometheus,
        f"--config.file={root / 'rendered' / 'prometheus' / 'prometheus.yml'}",
        f"--storage.tsdb.path={root / 'prometheus' / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2d",
    ]
    base = f"http://127.0.0.1:{port}"
    return Launch(
        "prometheus",
        "prometheus",
        argv,
        root / "logs" / "prometheus.log",
        port,
        health_url=f"{base}/-/ready",
        url=base,
    )


def relaunch(
    prepared: Prepared,
    state: StackState,
    member: Member,
    env: Mapping[str, str],
    overrides: Mapping[str, str],
) -> MemberLaunch:
    """How to start `member` of `state` again, as `up` started it: on the port it has.
    `overrides` replace environment variables of an app instance or worker. Raises
    CheckFailed when the plan or this machine no longer has the member (a service or
    worker gone from the plan, nginx or Prometheus uninstalled)."""
    root = Path(state.state_dir)
    layout = topology(prepared.loaded, prepared.sizing)
    if member.kind == "app":
        instance = layout.instance(member.name)
        if instance is not None:
            return _overridden(app_launch(prepared, state, instance, env), overrides)
    elif member.kind == "worker":
        named = (w for w in layout.workers if worker_member(w.name) == member.name)
        worker = next(named, None)
        if worker is not None:
            return _overridden(worker_launch(prepared, state, worker, env), overrides)
    elif member.kind == "postgres":
        return postgres_launch(prepared, root, member.port)
    elif member.kind == "redis":
        return redis_launch(prepared, root, member.name, member.port)
    elif member.kind == "nginx" and (nginx := which("nginx", env)) is not None:
        return nginx_launch(nginx, layout, state)
    elif member.kind == "prometheus" and member.port is not None:
        prometheus = shutil.which("prometheus")
        if prometheus is not None:
            return prometheus_launch(prometheus, root, member.port)
    raise CheckFailed(f"cannot restart {member.name}: the plan or this machine no longer has it")


def _overridden(launch: Launch, overrides: Mapping[str, str]) -> Launch:
    return replace(launch, env={**(launch.env or {}), **overrides})


def connections_needed(prepared: Prepared) -> int:
    """How many connections the plan's clients may open to PostgreSQL at once."""
    db = prepared.sizing.database
    return db.client_connections if db else 0
