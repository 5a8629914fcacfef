"""Bring the local stack up and down: PostgreSQL, Redis (cache and broker), the reference
app's gunicorn clusters, Dramatiq workers, nginx and Prometheus, all on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from scalectl import resources
from scalectl.errors import CheckFailed, InputError, ScalectlError
from scalectl.plan import Prepared, prepare, render_files
from scalectl.plan.appenv import APP_DEFAULTS
from scalectl.plan.context import ServiceView, WorkerView, app_env, build
from scalectl.plan.load import did_you_mean
from scalectl.plan.validate import which
from scalectl.plan.write import write_tree
from scalectl.stack import apikeys, credentials, servers
from scalectl.stack.access import open_within, others_need_access
from scalectl.stack.balancer import drained
from scalectl.stack.process import (
    child_environment,
    free_port,
    identity,
    member_process,
    port_in_use,
    spawn,
    tail,
    wait_for,
)
from scalectl.stack.shutdown import Progress, down, stop_member, stop_members
from scalectl.stack.state import Member, StackState, clear, ensure_dir, load


@dataclass(frozen=True)
class UpResult:
    state: StackState
    already_up: bool
    cleaned_stale: bool


def default_plan() -> Path:
    return Path(str(resources.template("plan/reference-app.yaml")))


def app_dir() -> Path:
    return Path(str(resources.data_dir("reference_app")))


def up(
    plan_path: Path,
    profile: str,
    state_dir: Path,
    *,
    timeout: float = 120.0,
    balancer: bool = True,
    environ: Mapping[str, str] | None = None,
    progress: Progress = lambda _: None,
) -> UpResult:
    state_dir = state_dir.absolute()
    prepared = prepare(plan_path, profile)
    if prepared.loaded.profile.upstreams != "loopback":
        raise InputError(
            f"{plan_path}: profile '{profile}' targets DNS names; `stack` needs a loopback "
            "profile such as 'local'"
        )
    cleaned = False
    ensure_dir(state_dir)
    existing = load(state_dir)
    if existing is not None:
        alive = [m for m in existing.members if member_process(m)]
        if existing.members and len(alive) == len(existing.members):
            return UpResult(existing, already_up=True, cleaned_stale=False)
        progress(
            f"found stale state from an earlier run ({len(alive)} of "
            f"{len(existing.members)} processes alive): cleaning up"
        )
        stop_members(existing, progress=progress)
        clear(state_dir)
        cleaned = True

    ctx = build(prepared.loaded, prepared.sizing)
    services: list[ServiceView] = ctx["services"]
    listen = prepared.loaded.profile.listen
    listen_port = int(listen.rsplit(":", 1)[1])
    # Children see only the allowlisted part of this (process.py, _base_env).
    env = dict(os.environ if environ is None else environ)
    nginx = which("nginx", env) if balancer else None
    _check_ports(services, listen_port if nginx else None, _worker_ports(prepared))
    state_dir.mkdir(parents=True, exist_ok=True)
    if others_need_access():
        # PostgreSQL's account and nginx's workers traverse the state dir (o+x, no listing
        # for them); a parent they cannot traverse is reported, never changed (access.py).
        open_within(state_dir, state_dir)
    credentials.ensure(state_dir)

    rendered = state_dir / "rendered"
    write_tree(rendered, render_files(prepared))
    state = StackState(
        plan=str(plan_path),
        profile=profile,
        state_dir=str(state_dir),
        started_at=time.time(),
    )
    try:
        _start_all(prepared, state, services, rendered, env, nginx, timeout, progress)
    except BaseException:
        progress("start-up failed: stopping what was started")
        stop_members(state, progress=progress)
        clear(state_dir)
        raise
    return UpResult(state, already_up=False, cleaned_stale=cleaned)


def _worker_ports(prepared: Prepared) -> list[int]:
    views: list[WorkerView] = build(prepared.loaded, prepared.sizing)["workers"]
    return [w.metrics_port for w in views]


def _check_ports(
    services: list[ServiceView], listen_port: int | None, worker_ports: list[int]
) -> None:
    busy = []
    for svc in services:
        for server in svc.upstream_servers:
            port = int(server.rsplit(":", 1)[1])
            if port_in_use(port):
                busy.append(f"{svc.name} instance port {port}")
    if listen_port is not None and port_in_use(listen_port):
        busy.append(f"load balancer port {listen_port}")
    for port in worker_ports:
        if port_in_use(port):
            busy.append(f"worker metrics port {port}")
    if busy:
        raise InputError(
            "ports the plan's local profile needs are in use",
            lines=[f"busy: {b}" for b in busy]
            + ["change profiles.local.base_port / listen in the plan, or stop what holds them"],
        )


def _start_all(
    prepared: Prepared,
    state: StackState,
    services: list[ServiceView],
    rendered: Path,
    env: dict[str, str],
    nginx: str | None,
    timeout: float,
    progress: Progress,
) -> None:
    plan = prepared.loaded.plan
    sizing = prepared.sizing
    root = Path(state.state_dir)
    logs = root / "logs"

    def record(member: Member) -> None:
        state.members.append(member)
        state.save()

    progress("starting PostgreSQL")
    pg = servers.start_postgres(
        root / "postgres" / "data",
        max_connections=max(200, _connections_needed(prepared) + 20),
        log=logs / "postgres.log",
        password=credentials.password(root, "postgres"),
        boundary=root,
    )
    exe, cmdline = identity(pg.process())
    record(
        Member(
            "postgres",
            "postgres",
            pg.pid,
            pg.create_time,
            str(pg.log),
            pg.port,
            url=pg.public_url,
            exe=exe,
            cmdline=cmdline,
        )
    )
    pg.create_database("refapp")
    # No password in state.json: clients read it from secrets/ (credentials.py).
    state.urls["database"] = pg.public_url.rsplit("/", 1)[0] + "/refapp"
    state.notes.append(f"PostgreSQL from {pg.binaries.source} ({pg.binaries.path})")

    progress("starting Redis (cache) and Redis (broker)")
    cache_memory = sizing.cache.maxmemory if sizing.cache else None
    policy = plan.cache.eviction_policy if plan.cache else None
    cache = servers.start_redis(
        root / "redis" / "data",
        log=logs / "redis.log",
        maxmemory=cache_memory,
        policy=policy,
        password=credentials.password(root, "redis"),
    )
    record(
        Member(
            "redis",
            "redis",
            cache.pid,
            cache.create_time,
            str(cache.log),
            cache.port,
            url=cache.public_url,
            exe=(who := identity(cache.process()))[0],
            cmdline=who[1],
        )
    )
    # Queued jobs must never be evicted: the broker is a separate, noeviction Redis. It keeps
    # its messages across down / up, so a job cut off by the end of a worker's drain window
    # is redelivered by the next stack rather than lost (docs/stack.md).
    broker = servers.start_redis(
        root / "broker" / "data",
        log=logs / "broker.log",
        policy="noeviction",
        persist=True,
        password=credentials.password(root, "broker"),
    )
    record(
        Member(
            "broker",
            "redis",
            broker.pid,
            broker.create_time,
            str(broker.log),
            broker.port,
            url=broker.public_url,
            exe=(who := identity(broker.process()))[0],
            cmdline=who[1],
        )
    )
    state.urls["redis"] = cache.public_url
    state.urls["broker"] = broker.public_url
    state.notes.append(f"Redis from {cache.binaries.source} ({cache.binaries.path})")

    # API keys for the app's /api (issue 11): minted once per state dir with the app's own
    # environment, before any app instance starts. See scalectl.stack.apikeys.
    progress("minting API keys (once per state dir)")
    apikeys.mint_pool(root, _base_env(prepared, state, env), app_dir())

    for svc in services:
        for index, _ in enumerate(svc.upstream_servers, start=1):
            launch = app_launch(prepared, state, svc, index, env)
            progress(f"starting {launch.name} on 127.0.0.1:{launch.port}")
            proc = launch.spawn()
            record(launch.member(proc))

    for index, name in enumerate(plan.workers):
        launch = worker_launch(prepared, state, index, name, env)
        queues = ", ".join(q.name for q in plan.workers[name].queues)
        progress(f"starting {launch.name} (queues {queues})")
        proc = launch.spawn()
        record(launch.member(proc))

    _start_nginx(nginx, prepared, state, rendered, logs, progress, record)
    _start_prometheus(state, rendered, logs, progress, record)

    progress("waiting for every service to be healthy")
    _wait_healthy(state, timeout)
    state.save()


@dataclass(frozen=True)
class Launch:
    """How one app instance or worker of the stack is started: by `up`, and again by
    `restart_member` (fault drills, the graceful-shutdown check)."""

    name: str
    kind: str  # app | worker
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    port: int
    health_url: str
    url: str | None = None
    metrics_dir: Path | None = None
    drain_seconds: float | None = None

    def spawn(self) -> psutil.Process:
        if self.metrics_dir is not None:
            # prometheus_client multiprocess files of an earlier run would skew the counters.
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            self.metrics_dir.mkdir(parents=True)
        return spawn(self.argv, log=self.log, env=self.env, cwd=self.cwd)

    def member(self, proc: psutil.Process) -> Member:
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


def _base_env(prepared: Prepared, state: StackState, env: Mapping[str, str]) -> dict[str, str]:
    root = Path(state.state_dir)
    return {
        **child_environment(env),
        # The app's own tuning knobs, when the caller sets them on purpose (drills and
        # tests do): named settings of the app, not a CI's credentials.
        **{name: value for name, value in env.items() if name in APP_DEFAULTS},
        **app_environment(prepared),
        # The password as a file, as on Kubernetes and Compose; Redis takes it in its URL
        # (the environment of a process is readable by its own user only).
        "DATABASE_URL": state.urls["database"],
        "DATABASE_PASSWORD_FILE": str(credentials.secrets_dir(root) / "postgres"),
        "REDIS_URL": credentials.authenticated_url(root, state.urls, "redis"),
        "BROKER_URL": credentials.authenticated_url(root, state.urls, "broker"),
        "HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        # /api/debug/sleep: fault drills hold requests in flight with it (docs/drills.md).
        "REFAPP_DEBUG": "1",
        # A worker killed between committing a job row and enqueueing it leaves the row
        # 'queued' until cleanup sweeps it (default: after 300 s, every 60 s). Locally,
        # sweep within a minute so `scalectl drill queue-worker-kill` sees it recovered.
        "CLEANUP_STUCK_QUEUED_SECONDS": "30",
        "CLEANUP_INTERVAL_SECONDS": "10",
    }


def app_launch(
    prepared: Prepared, state: StackState, svc: ServiceView, index: int, env: Mapping[str, str]
) -> Launch:
    """Instance `index` (1-based) of service `svc`: one gunicorn cluster on its own port."""
    root = Path(state.state_dir)
    port = int(svc.upstream_servers[index - 1].rsplit(":", 1)[1])
    name = f"{svc.name}-{index}"
    metrics_dir = root / "metrics" / name
    # Locally every instance shares this machine's cores.
    cores = os.cpu_count() or 1
    app_env = {
        **_base_env(prepared, state, env),
        "SERVICE_NAME": svc.name,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(min(svc.size.processes, cores)),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "RELEASE_ID": f"local-{name}",
        # This service's own drain window (app_environment has the first service's).
        "GRACEFUL_TIMEOUT": str(svc.spec.graceful_shutdown_seconds),
    }
    argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "refapp.main:app"]
    return Launch(
        name,
        "app",
        argv,
        app_env,
        app_dir(),
        root / "logs" / f"{name}.log",
        port,
        health_url=f"http://127.0.0.1:{port}/health/ready",
        url=f"http://127.0.0.1:{port}",
        metrics_dir=metrics_dir,
        drain_seconds=svc.spec.graceful_shutdown_seconds,
    )


def worker_launch(
    prepared: Prepared, state: StackState, index: int, name: str, env: Mapping[str, str]
) -> Launch:
    """The Dramatiq worker for the plan's worker `name` (its `index` among the workers)."""
    root = Path(state.state_dir)
    worker = prepared.loaded.plan.workers[name]
    cores = os.cpu_count() or 1
    metrics_port = _worker_ports(prepared)[index]
    prom_db = root / "metrics" / f"worker-{name}"
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "refapp.tasks",
        "--processes",
        str(min(worker.processes, cores)),
        "--threads",
        str(worker.threads),
        "--worker-shutdown-timeout",
        str(worker.graceful_shutdown_seconds * 1000),
        "--queues",
        *[q.name for q in worker.queues],
    ]
    worker_env = {
        **_base_env(prepared, state, env),
        "SERVICE_NAME": name,
        "dramatiq_prom_host": "127.0.0.1",
        "dramatiq_prom_port": str(metrics_port),
        "dramatiq_prom_db": str(prom_db),
        # How often an idle worker thread or consumer wakes up (default 1000 ms); each one
        # notices a stop only then, so it bounds how long an idle worker takes to stop.
        "dramatiq_worker_timeout": "500",
    }
    member_name = f"worker-{name}"
    return Launch(
        member_name,
        "worker",
        argv,
        worker_env,
        app_dir(),
        root / "logs" / f"{member_name}.log",
        metrics_port,
        health_url=f"http://127.0.0.1:{metrics_port}/metrics",
        metrics_dir=prom_db,
        drain_seconds=worker.graceful_shutdown_seconds,
    )


def _start_nginx(
    nginx: str | None,
    prepared: Prepared,
    state: StackState,
    rendered: Path,
    logs: Path,
    progress: Progress,
    record: Callable[[Member], None],
) -> None:
    listen = prepared.loaded.profile.listen
    if nginx is None:
        state.notes.append(
            "no load balancer (nginx not installed, or --no-balancer): "
            "clients use the app instances directly"
        )
        progress("running without the load balancer")
        first = next(m for m in state.members if m.kind == "app")
        state.urls["app"] = first.url or ""
        return
    prefix = Path(state.state_dir) / "nginx"
    for sub in ("conf", "logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    # nginx's master opens its logs before it forks: its workers write through those files.
    (prefix / "logs").chmod(0o700)
    # As root, nginx's master creates its temp directories under tmp/ for its unprivileged
    # workers itself: they only need to traverse the prefix down to it.
    if others_need_access():
        open_within(Path(state.state_dir), prefix / "tmp")
    conf = prefix / "conf" / "nginx.conf"
    shutil.copyfile(rendered / "nginx" / "nginx.conf", conf)  # exactly what `plan` rendered
    progress(f"starting nginx on {listen}")
    argv = _nginx_argv(nginx, prefix)
    proc = spawn(argv, log=logs / "nginx.log")
    exe, cmdline = identity(proc, argv)
    host, port = listen.rsplit(":", 1)
    base = f"http://{host}:{port}"
    record(
        Member(
            "nginx",
            "nginx",
            proc.pid,
            proc.create_time(),
            str(logs / "nginx.log"),
            int(port),
            health_url=f"{base}/nginx/health",
            url=base,
            # Its requests in flight are the apps': it may need as long as the slowest app.
            drain_seconds=max(
                (m.drain_seconds or 0.0 for m in state.members if m.kind == "app"), default=0.0
            ),
            exe=exe,
            cmdline=cmdline,
        )
    )
    state.urls["app"] = base


def _start_prometheus(
    state: StackState,
    rendered: Path,
    logs: Path,
    progress: Progress,
    record: Callable[[Member], None],
) -> None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        state.notes.append("Prometheus is not installed: no scraping or alert evaluation")
        return
    port = free_port()
    data = Path(state.state_dir) / "prometheus" / "data"
    data.mkdir(parents=True, exist_ok=True)
    progress(f"starting Prometheus on 127.0.0.1:{port}")
    argv = _prometheus_argv(prometheus, rendered, data, port)
    proc = spawn(argv, log=logs / "prometheus.log")
    exe, cmdline = identity(proc, argv)
    base = f"http://127.0.0.1:{port}"
    record(
        Member(
            "prometheus",
            "prometheus",
            proc.pid,
            proc.create_time(),
            str(logs / "prometheus.log"),
            port,
            health_url=f"{base}/-/ready",
            url=base,
            exe=exe,
            cmdline=cmdline,
        )
    )
    state.urls["prometheus"] = base


def _nginx_argv(nginx: str, prefix: Path) -> list[str]:
    conf = prefix / "conf" / "nginx.conf"
    return [nginx, "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"]


def _prometheus_argv(prometheus: str, rendered: Path, data: Path, port: int) -> list[str]:
    return [
        prometheus,
        f"--config.file={rendered / 'prometheus' / 'prometheus.yml'}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2d",
    ]


def _wait_healthy(state: StackState, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0, trust_env=False) as client:  # loopback, never a proxy
        for member in state.members:
            if member.health_url is None:
                continue

            def healthy(m: Member = member) -> bool:
                if member_process(m) is None:
                    raise _Died(m.name)
                assert m.health_url is not None
                return client.get(m.health_url).status_code == 200

            left = max(0.0, deadline - time.monotonic())
            try:
                ok = wait_for(healthy, timeout=left, interval=0.25, reraise=(_Died,))
            except _Died:
                raise CheckFailed(
                    f"{member.name} exited during start-up; last lines of {member.log}:",
                    lines=tail(Path(member.log)).splitlines(),
                ) from None
            if not ok:
                raise CheckFailed(
                    f"{member.name} was not healthy within {timeout:g}s ({member.health_url}); "
                    f"last lines of {member.log}:",
                    lines=tail(Path(member.log)).splitlines(),
                )


class _Died(Exception):
    pass


def app_environment(prepared: Prepared) -> dict[str, str]:
    """Settings the reference app reads, from the plan (names match its fields)."""
    plan = prepared.loaded.plan
    env = dict(app_env(plan))
    first = prepared.sizing.services[0]
    if plan.database:
        env["DATABASE_POOL_MIN"] = str(first.pool_min)
        env["DATABASE_POOL_MAX"] = str(first.pool_max)
        env["DATABASE_POOL_TIMEOUT"] = f"{plan.database.pool.acquire_timeout_seconds:g}"
        env["DATABASE_STATEMENT_TIMEOUT_MS"] = str(plan.database.pool.statement_timeout_ms)
    svc = next(iter(plan.services.values()))
    env["GRACEFUL_TIMEOUT"] = str(svc.graceful_shutdown_seconds)
    return env


def _connections_needed(prepared: Prepared) -> int:
    db = prepared.sizing.database
    return db.client_connections if db else 0


def require_state(state_dir: Path) -> StackState:
    state = load(state_dir.absolute())
    if state is None:
        raise InputError(f"{state_dir}: no stack is running here (run `scalectl stack up`)")
    return state


def restart_member(
    state_dir: Path,
    name: str,
    *,
    timeout: float = 60.0,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
    progress: Progress = lambda _: None,
    drain: bool = True,
) -> Member:
    """Stop one member of a running stack (gracefully, if it is still alive) and start it
    again as `up` did: same command, environment, port, data directory and log. Returns the
    new member, already recorded in state.json, once it is healthy (or raises CheckFailed).

    `overrides` replace environment variables of an app instance or worker after the plan's
    (tests use it to start a deliberately broken instance, e.g. GRACEFUL_TIMEOUT=0).
    Used by the checklist's graceful-shutdown check and by fault drills."""
    state_dir = state_dir.absolute()
    state = require_state(state_dir)
    member = state.member(name)
    if member is None:
        hint = did_you_mean(name, [m.name for m in state.members])
        raise InputError(f"{state_dir}: no member named '{name}' in the stack{hint}")
    # An app instance leaves nginx before it stops and rejoins once healthy, as on Kubernetes
    # (`drain=False`: as a deployment that skips that step, for drills).
    with drained(state, member, progress) if drain else contextlib.nullcontext(False):
        stop_member(member, progress=progress)
        progress(f"starting {name}")
        env = dict(os.environ if environ is None else environ)
        fresh = _relaunch(
            prepare(Path(state.plan), state.profile), state, member, env, dict(overrides or {})
        )
        state.members[state.members.index(member)] = fresh
        state.save()
        _wait_healthy(replace(state, members=[fresh]), timeout)
    return fresh


def _relaunch(
    prepared: Prepared,
    state: StackState,
    member: Member,
    env: dict[str, str],
    overrides: dict[str, str],
) -> Member:
    root = Path(state.state_dir)
    log = Path(member.log)
    plan = prepared.loaded.plan
    if member.kind == "app":
        services: list[ServiceView] = build(prepared.loaded, prepared.sizing)["services"]
        for svc in services:
            for index in range(1, len(svc.upstream_servers) + 1):
                if f"{svc.name}-{index}" == member.name:
                    launch = app_launch(prepared, state, svc, index, env)
                    launch = replace(launch, env={**launch.env, **overrides})
                    return launch.member(launch.spawn())
    elif member.kind == "worker":
        for index, name in enumerate(plan.workers):
            if f"worker-{name}" == member.name:
                launch = worker_launch(prepared, state, index, name, env)
                launch = replace(launch, env={**launch.env, **overrides})
                return launch.member(launch.spawn())
    elif member.kind == "postgres":
        pg = servers.start_postgres(
            root / "postgres" / "data",
            member.port,
            max_connections=max(200, _connections_needed(prepared) + 20),
            log=log,
            password=credentials.password(root, "postgres"),
            boundary=root,
        )
        exe, cmdline = identity(pg.process())
        return replace(member, pid=pg.pid, create_time=pg.create_time, exe=exe, cmdline=cmdline)
    elif member.kind == "redis":
        cache = member.name == "redis"
        server = servers.start_redis(
            root / member.name / "data",
            member.port,
            log=log,
            maxmemory=prepared.sizing.cache.maxmemory if cache and prepared.sizing.cache else None,
            policy=(plan.cache.eviction_policy if plan.cache else None) if cache else "noeviction",
            persist=not cache,
            password=credentials.password(root, member.name),
        )
        exe, cmdline = identity(server.process())
        return replace(
            member, pid=server.pid, create_time=server.create_time, exe=exe, cmdline=cmdline
        )
    elif member.kind == "nginx":
        nginx = which("nginx", env)
        if nginx is not None:
            argv = _nginx_argv(nginx, root / "nginx")
            proc = spawn(argv, log=log)
            exe, cmdline = identity(proc, argv)
            return replace(
                member, pid=proc.pid, create_time=proc.create_time(), exe=exe, cmdline=cmdline
            )
    elif member.kind == "prometheus" and member.port is not None:
        prometheus = shutil.which("prometheus")
        if prometheus is not None:
            data = root / "prometheus" / "data"
            argv = _prometheus_argv(prometheus, root / "rendered", data, member.port)
            proc = spawn(argv, log=log)
            exe, cmdline = identity(proc, argv)
            return replace(
                member, pid=proc.pid, create_time=proc.create_time(), exe=exe, cmdline=cmdline
            )
    raise CheckFailed(f"cannot restart {member.name}: the plan or this machine no longer has it")


__all__ = ["ScalectlError", "UpResult", "down", "require_state", "restart_member", "up"]
