"""Bring the local stack up and down: PostgreSQL, Redis (cache and broker), the reference
app's gunicorn clusters, Dramatiq workers, nginx and Prometheus, all on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from scalectl import resources
from scalectl.errors import CheckFailed, InputError, ScalectlError
from scalectl.files import write_tree
from scalectl.plan import Prepared, prepare, render_files
from scalectl.plan.context import ServiceView, build
from scalectl.plan.validate import which
from scalectl.stack import apikeys, credentials, servers
from scalectl.stack.access import open_within, others_need_access
from scalectl.stack.balancer import drained
from scalectl.stack.launch import (
    app_dir,
    app_launch,
    base_env,
    connections_needed,
    nginx_argv,
    prometheus_argv,
    worker_launch,
    worker_ports,
)
from scalectl.stack.process import (
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
from scalectl.usertext import did_you_mean


@dataclass(frozen=True)
class UpResult:
    state: StackState
    already_up: bool
    cleaned_stale: bool


def default_plan() -> Path:
    return Path(str(resources.template("plan/reference-app.yaml")))


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
    # Children see only the allowlisted part of this (process.py, base_env).
    env = dict(os.environ if environ is None else environ)
    nginx = which("nginx", env) if balancer else None
    _check_ports(services, listen_port if nginx else None, worker_ports(prepared))
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
        max_connections=max(200, connections_needed(prepared) + 20),
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
    apikeys.mint_pool(root, base_env(prepared, state, env), app_dir())

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
    argv = nginx_argv(nginx, prefix)
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
    argv = prometheus_argv(prometheus, rendered, data, port)
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
            max_connections=max(200, connections_needed(prepared) + 20),
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
            argv = nginx_argv(nginx, root / "nginx")
            proc = spawn(argv, log=log)
            exe, cmdline = identity(proc, argv)
            return replace(
                member, pid=proc.pid, create_time=proc.create_time(), exe=exe, cmdline=cmdline
            )
    elif member.kind == "prometheus" and member.port is not None:
        prometheus = shutil.which("prometheus")
        if prometheus is not None:
            data = root / "prometheus" / "data"
            argv = prometheus_argv(prometheus, root / "rendered", data, member.port)
            proc = spawn(argv, log=log)
            exe, cmdline = identity(proc, argv)
            return replace(
                member, pid=proc.pid, create_time=proc.create_time(), exe=exe, cmdline=cmdline
            )
    raise CheckFailed(f"cannot restart {member.name}: the plan or this machine no longer has it")


__all__ = ["ScalectlError", "UpResult", "down", "require_state", "restart_member", "up"]
