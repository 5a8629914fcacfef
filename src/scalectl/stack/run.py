"""Bring the local stack up and down: PostgreSQL, Redis (cache and broker), the reference
app's gunicorn clusters, Dramatiq workers, nginx and Prometheus, all on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from scalectl import resources
from scalectl.errors import CheckFailed, InputError, ScalectlError
from scalectl.files import tail, write_tree
from scalectl.netguard import loopback_client
from scalectl.plan import Prepared, prepare, render_files
from scalectl.plan.topology import Topology, topology
from scalectl.plan.validate import which
from scalectl.stack import apikeys, credentials
from scalectl.stack.access import open_within, others_need_access
from scalectl.stack.balancer import drained
from scalectl.stack.environment import app_dir, base_env
from scalectl.stack.launch import (
    BROKER,
    CACHE,
    app_launch,
    nginx_launch,
    postgres_launch,
    prometheus_launch,
    redis_launch,
    relaunch,
    worker_launch,
)
from scalectl.stack.process import free_port, member_process, port_in_use, wait_for
from scalectl.stack.servers import Server
from scalectl.stack.shutdown import Progress, down, stop_member, stop_members
from scalectl.stack.state import Member, StackState, clear, ensure_dir, load
from scalectl.usertext import did_you_mean


@dataclass(frozen=True)
class UpResult:
    """What `up` did: the running stack's state, and whether it found one already running
    (then it started nothing) or a stale one it cleaned up first."""

    state: StackState
    already_up: bool
    cleaned_stale: bool


def default_plan() -> Path:
    """The reference app's plan shipped with scalectl: `stack up`'s default."""
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
    """Start the stack of `plan_path`'s loopback `profile` in `state_dir` and wait until
    every member is healthy: PostgreSQL, the cache and broker Redis, the app instances,
    the queue workers, nginx (unless `balancer` is False or nginx is not installed) and
    Prometheus (when installed). `environ` (default ours) is where tools are looked up;
    children get only its allowlisted part (process.child_environment).

    Returns the stack's state; a stack already fully running there is returned as it is
    (`already_up`), and one left half-dead by an earlier run is stopped first
    (`cleaned_stale`). Raises InputError for a plan or profile `stack` cannot run (not
    loopback, a worker with its own `command`, ports in use, an untrusted state dir) and
    CheckFailed or ServerError when a member does not start or become healthy within
    `timeout` seconds; whatever was started by then is stopped again."""
    state_dir = state_dir.absolute()
    prepared = prepare(plan_path, profile)
    if prepared.loaded.profile.upstreams != "loopback":
        raise InputError(
            f"{plan_path}: profile '{profile}' targets DNS names; `stack` needs a loopback "
            "profile such as 'local'"
        )
    custom = [name for name, w in prepared.loaded.plan.workers.items() if w.command is not None]
    if custom:
        # The stack runs the reference app; another program's worker would consume queues
        # the app never fills, so refuse rather than pretend.
        raise InputError(
            f"{plan_path}: workers.{custom[0]}.command: `stack` runs only the reference app's "
            "Dramatiq workers; drop the command for a local stack, or render the plan with "
            "`scalectl plan` and run it with Compose"
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

    layout = topology(prepared.loaded, prepared.sizing)
    # Children see only the allowlisted part of this (process.py, base_env).
    env = dict(os.environ if environ is None else environ)
    nginx = which("nginx", env) if balancer else None
    _check_ports(layout, with_balancer=nginx is not None)
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
        _start_all(prepared, state, layout, env, nginx, timeout, progress)
    except BaseException:
        progress("start-up failed: stopping what was started")
        stop_members(state, progress=progress)
        clear(state_dir)
        raise
    return UpResult(state, already_up=False, cleaned_stale=cleaned)


def _check_ports(layout: Topology, *, with_balancer: bool) -> None:
    busy = []
    for svc in layout.services:
        for instance in svc.instances:
            if port_in_use(instance.port):
                busy.append(f"{svc.name} instance port {instance.port}")
    if with_balancer and port_in_use(layout.listen_port):
        busy.append(f"load balancer port {layout.listen_port}")
    for worker in layout.workers:
        if port_in_use(worker.metrics_port):
            busy.append(f"worker metrics port {worker.metrics_port}")
    if busy:
        raise InputError(
            "ports the plan's local profile needs are in use",
            lines=[f"busy: {b}" for b in busy]
            + ["change profiles.local.base_port / listen in the plan, or stop what holds them"],
        )


def _start_all(
    prepared: Prepared,
    state: StackState,
    layout: Topology,
    env: dict[str, str],
    nginx: str | None,
    timeout: float,
    progress: Progress,
) -> None:
    plan = prepared.loaded.plan
    root = Path(state.state_dir)

    def record(member: Member) -> None:
        state.members.append(member)
        state.save()

    progress("starting PostgreSQL")
    postgres = postgres_launch(prepared, root)
    pg = postgres.serve()
    record(postgres.member(pg))
    pg.create_database("refapp")
    # No password in state.json: clients read it from secrets/ (credentials.py).
    state.urls["database"] = pg.public_url.rsplit("/", 1)[0] + "/refapp"
    state.notes.append(f"PostgreSQL from {pg.binaries.source} ({pg.binaries.path})")

    progress("starting Redis (cache) and Redis (broker)")
    redis: dict[str, Server] = {}
    for name in (CACHE, BROKER):
        launch = redis_launch(prepared, root, name)
        redis[name] = launch.serve()
        record(launch.member(redis[name]))
    for name, server in redis.items():  # the URL keys are the member names
        state.urls[name] = server.public_url
    cache = redis[CACHE].binaries
    state.notes.append(f"Redis from {cache.source} ({cache.path})")

    # API keys for the app's /api (issue 11): minted once per state dir with the app's own
    # environment, before any app instance starts. See scalectl.stack.apikeys.
    progress("minting API keys (once per state dir)")
    apikeys.mint_pool(root, base_env(prepared, state, env), app_dir())

    for svc in layout.services:
        for instance in svc.instances:
            app = app_launch(prepared, state, instance, env)
            progress(f"starting {app.name} on 127.0.0.1:{app.port}")
            record(app.start())

    for placed in layout.workers:
        worker = worker_launch(prepared, state, placed, env)
        queues = ", ".join(q.name for q in plan.workers[placed.name].queues)
        progress(f"starting {worker.name} (queues {queues})")
        record(worker.start())

    if nginx is None:
        state.notes.append(
            "no load balancer (nginx not installed, or --no-balancer): "
            "clients use the app instances directly"
        )
        progress("running without the load balancer")
        first = next(m for m in state.members if m.kind == "app")
        state.urls["app"] = first.url or ""
    else:
        _prepare_nginx(root)
        progress(f"starting nginx on {layout.listen}")
        balancer = nginx_launch(nginx, layout, state)
        record(balancer.start())
        state.urls["app"] = balancer.url or ""

    prometheus = shutil.which("prometheus")
    if prometheus is None:
        state.notes.append("Prometheus is not installed: no scraping or alert evaluation")
    else:
        port = free_port()
        (root / "prometheus" / "data").mkdir(parents=True, exist_ok=True)
        progress(f"starting Prometheus on 127.0.0.1:{port}")
        scraper = prometheus_launch(prometheus, root, port)
        record(scraper.start())
        state.urls["prometheus"] = scraper.url or ""

    progress("waiting for every service to be healthy")
    _wait_healthy(state, timeout)
    state.save()


def _prepare_nginx(root: Path) -> None:
    """nginx's prefix in the state dir, with the nginx.conf `plan` rendered."""
    prefix = root / "nginx"
    for sub in ("conf", "logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    # nginx's master opens its logs before it forks: its workers write through those files.
    (prefix / "logs").chmod(0o700)
    # As root, nginx's master creates its temp directories under tmp/ for its unprivileged
    # workers itself: they only need to traverse the prefix down to it.
    if others_need_access():
        open_within(root, prefix / "tmp")
    # Exactly what `plan` rendered.
    shutil.copyfile(root / "rendered" / "nginx" / "nginx.conf", prefix / "conf" / "nginx.conf")


def _wait_healthy(state: StackState, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with loopback_client(2.0) as client:
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
                    lines=tail(Path(member.log)),
                ) from None
            if not ok:
                raise CheckFailed(
                    f"{member.name} was not healthy within {timeout:g}s ({member.health_url}); "
                    f"last lines of {member.log}:",
                    lines=tail(Path(member.log)),
                )


class _Died(Exception):
    pass


def require_state(state_dir: Path) -> StackState:
    """The state of the stack running in `state_dir`. InputError when none runs there
    or its state cannot be trusted (state.load)."""
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
    again as `up` did (the same launch description: stack.launch): same command,
    environment, port, data directory and log. Returns the new member, already recorded in
    state.json, once it is healthy. Raises InputError when no stack runs in `state_dir` or
    it has no member `name`; CheckFailed (or ServerError) when the member cannot be started
    again or is not healthy within `timeout` seconds.

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
        prepared = prepare(Path(state.plan), state.profile)
        fresh = relaunch(prepared, state, member, env, overrides or {}).start()
        if member.kind not in ("app", "worker"):
            # A server keeps the port and URLs `up` recorded: its configuration in the
            # state dir (nginx.conf, prometheus.yml, the data directories) is from then.
            fresh = replace(
                member,
                pid=fresh.pid,
                create_time=fresh.create_time,
                exe=fresh.exe,
                cmdline=fresh.cmdline,
            )
        state.members[state.members.index(member)] = fresh
        state.save()
        _wait_healthy(replace(state, members=[fresh]), timeout)
    return fresh


__all__ = ["ScalectlError", "UpResult", "down", "require_state", "restart_member", "up"]
