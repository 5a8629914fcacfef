"""Drills that kill, stop or restart the stack's own processes under load: worker-kill,
graceful-shutdown, rolling-restart, queue-worker-kill."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scalectl.drill import faults
from scalectl.drill.database import settle_jobs, wait_running_job
from scalectl.drill.engine import DrillContext, Measured, Spec
from scalectl.drill.inflight import HeldRequests
from scalectl.drill.kinds.base import (
    DrillGates,
    DrillKind,
    DrillOptions,
    app_names,
    failed_figure,
)
from scalectl.drill.model import Figure
from scalectl.drill.restore import restart, restore_touched, start_again
from scalectl.drill.traffic import Load
from scalectl.errors import InputError
from scalectl.stack import apikeys
from scalectl.stack.balancer import drained
from scalectl.stack.state import StackState

REPLACEMENT_TIMEOUT = 60  # seconds worker-kill waits for a new worker to answer


def _first_app(ctx: DrillContext) -> str:
    apps = faults.members_of_kind(ctx, "app")
    if not apps:
        raise InputError("the stack runs no app instance")
    return apps[0].name


def _requires_app(drill: str) -> Callable[[StackState, DrillOptions], None]:
    """For drills that fault one app instance: --instance names one, and there is one."""

    def requires(state: StackState, options: DrillOptions) -> None:
        apps = app_names(state)
        if options.instance and options.instance not in apps:
            hint = f" (app instances: {', '.join(apps)})" if apps else ""
            raise InputError(
                f"--instance {options.instance}: not an app instance of this stack{hint}"
            )
        if not apps:
            raise InputError(f"{drill}: the stack runs no app instance")

    return requires


# --- worker-kill --------------------------------------------------------------------------


def worker_kill(gates: DrillGates, options: DrillOptions) -> Spec:
    """SIGKILL the busiest gunicorn worker of an app instance under load; the figures say
    how soon a new worker answered and whether requests in flight failed (through nginx,
    or sent to the instance directly with `options.direct`)."""
    instance, direct = options.instance, options.direct

    def inject(ctx: DrillContext) -> None:
        name = instance or _first_app(ctx)
        master = faults.process(ctx, name)
        workers = faults.children(master)
        port = faults.member(ctx, name).port
        # Slow requests through the drill's own target (nginx, or the instance with
        # --direct), so the killed worker surely has requests in flight.
        held = HeldRequests(
            ctx.url,
            2 * len(workers) * len(faults.members_of_kind(ctx, "app")),
            apikeys.auth_headers(ctx.state_dir),
        )
        victim = faults.busiest_child(master, port)
        ctx.touch(name)
        ctx.timeline.mark("fault_start", f"SIGKILL gunicorn worker {victim.pid} of {name}")
        faults.kill(victim)
        m = faults.member(ctx, name)
        seconds = faults.wait_replaced(
            master,
            {w.pid for w in workers},
            victim.pid,
            m.url,
            timeout=REPLACEMENT_TIMEOUT,
            auth=apikeys.auth_headers(ctx.state_dir),
        )
        ctx.timeline.mark(
            "fault_end",
            f"{name}: a new worker served a request after {seconds} s"
            if seconds is not None
            else f"{name}: no new worker served a request within {REPLACEMENT_TIMEOUT} s",
        )
        completed = held.finish()
        ctx.figures.append(
            Figure("replacement_seconds",
                   float(REPLACEMENT_TIMEOUT) if seconds is None else seconds, "s", "<=",
                   gates.max_replacement_s,
                   f"until a new worker forked by {name}'s master answered a request"
                   + (f" (none within {REPLACEMENT_TIMEOUT} s)" if seconds is None else ""))
        )  # fmt: skip
        ctx.figures.append(
            Figure("in_flight_failed", held.count - completed, "requests", "<=",
                   gates.max_failed,
                   f"of {held.count} slow requests in flight when the worker died: {held.detail()}")
        )  # fmt: skip

    def url(state: StackState) -> str:
        if not direct:
            return state.urls["app"]
        apps = [m for m in state.members if m.kind == "app"]
        target = next((m for m in apps if m.name == instance), apps[0] if apps else None)
        if target is None or target.url is None:
            raise InputError("the stack runs no app instance")
        return target.url

    return Spec(
        "worker-kill",
        "SIGKILL one gunicorn worker under load"
        + (" (load sent to the instance directly, no balancer)" if direct else ""),
        inject,
        restore_touched,
        lambda ctx, m: [failed_figure(m, gates)],
        url=url,
    )


# --- graceful-shutdown --------------------------------------------------------------------


def graceful_shutdown(gates: DrillGates, options: DrillOptions) -> Spec:
    """SIGTERM an app instance (out of nginx first, unless `options.drain` is False) with
    slow requests in flight on it: every one must complete."""
    instance, drain = options.instance, options.drain

    def inject(ctx: DrillContext) -> None:
        name = instance or _first_app(ctx)
        m = faults.member(ctx, name)
        master = faults.process(ctx, name)
        auth = apikeys.auth_headers(ctx.state_dir)
        held = HeldRequests(f"{m.url}", max(2, 2 * len(faults.children(master))), auth)
        ctx.timeline.mark(
            "fault_start", f"SIGTERM {name} with {held.count} slow requests in flight"
        )
        ctx.touch(name)
        # Out of nginx first, as endpoint removal and preStop do on Kubernetes: the
        # balanced load must not notice; the requests held on the instance must complete.
        leave = drained(ctx.state, m, ctx.timeline.note) if drain else contextlib.nullcontext()
        with leave:
            seconds = faults.stop_group(master, signal.SIGTERM, timeout=60)
            ctx.timeline.note(f"{name} exited after {seconds} s")
            completed = held.finish()
            ctx.figures.append(
                Figure("in_flight_completed", completed, "requests", ">=", held.count,
                       f"of {held.count} held in flight at the SIGTERM: {held.detail()}")
            )  # fmt: skip
            ctx.figures.append(Figure("shutdown_seconds", seconds, "s", detail=f"{name} to exit"))
            start_again(ctx, name)
        ctx.timeline.mark("fault_end", f"{name} started again")

    return Spec(
        "graceful-shutdown",
        "SIGTERM an app instance under load: requests in flight must complete",
        inject,
        restore_touched,
        lambda ctx, m: [failed_figure(m, gates)],
    )


# --- rolling-restart ----------------------------------------------------------------------


def rolling_restart(gates: DrillGates, options: DrillOptions) -> Spec:
    """Restart instances a batch (`options.max_unavailable`) at a time, waiting after each
    batch until the balancer uses it again (`options.settle_seconds`, by default the plan's
    fail_timeout): nginx's passive checks keep a server it saw fail out of rotation for
    `fail_timeout`, even once it is healthy, so restarting the next one sooner leaves no
    live upstream (what this drill found in its first run)."""
    max_unavailable, settle_seconds = options.max_unavailable, options.settle_seconds
    drain = options.drain

    def inject(ctx: DrillContext) -> None:
        names = [m.name for m in faults.members_of_kind(ctx, "app")]
        if len(names) < 2:
            raise InputError("a rolling restart needs at least 2 app instances in the plan")
        settle = settle_seconds if settle_seconds is not None else _fail_timeout(ctx)
        ctx.timeline.mark(
            "fault_start",
            f"rolling restart of {', '.join(names)}, {max_unavailable} at a time, "
            f"{settle:g} s to rejoin the balancer",
        )
        for i in range(0, len(names), max_unavailable):
            batch = names[i : i + max_unavailable]
            for name in batch:
                ctx.touch(name)
            if len(batch) == 1:
                restart(ctx, batch[0], drain)
            else:  # several instances down at once
                for name in batch:
                    faults.stop_group(faults.process(ctx, name), signal.SIGTERM, timeout=60)
                for name in batch:
                    start_again(ctx, name)
            ctx.timeline.note(f"restarted {', '.join(batch)}; healthy")
            if i + max_unavailable < len(names) and ctx.wait(settle):
                return
        ctx.timeline.mark("fault_end", "every instance restarted")

    return Spec(
        "rolling-restart",
        f"restart the app instances {max_unavailable} at a time behind nginx under load",
        inject,
        restore_touched,
        lambda ctx, m: [failed_figure(m, gates)],
        after_seconds=5.0,
    )


def _fail_timeout(ctx: DrillContext) -> float:
    from scalectl.plan.load import load_plan

    plan = load_plan(Path(ctx.state.plan), ctx.state.profile).plan
    return float(plan.load_balancer.fail_timeout_seconds)


def _requires_app_pair(state: StackState, options: DrillOptions) -> None:
    if len(app_names(state)) < 2:
        raise InputError("rolling-restart: needs at least 2 app instances in the plan")


# --- queue-worker-kill --------------------------------------------------------------------


@dataclass
class _KillSeen:
    """What queue-worker-kill's fault saw, for its measure."""

    running_jobs: int = 0  # jobs running when the worker was killed


def queue_worker_kill(gates: DrillGates, options: DrillOptions) -> Spec:
    """SIGKILL a Dramatiq worker (its main process and every worker process) while jobs
    run, start it again, and check in PostgreSQL that every job of every acknowledged
    submission finished exactly once (waiting up to `options.job_wait_seconds`)."""
    job_wait = options.job_wait_seconds
    seen = _KillSeen()

    def inject(ctx: DrillContext) -> None:
        name = _first_worker(ctx)
        proc = faults.process(ctx, name)
        running = wait_running_job(ctx, timeout=30, several_for=10)
        group = [proc, *faults.children(proc)]  # milliseconds: the jobs seen are still running
        ctx.touch(name)
        for p in group:
            faults.kill(p)
        seen.running_jobs = running
        ctx.timeline.mark(
            "fault_start", f"SIGKILL {name} and its worker processes ({running} jobs running)"
        )
        faults.stop_group(proc, signal.SIGKILL, timeout=10)
        ctx.timeline.note(f"{name}: {len(group)} processes killed")
        restart(ctx, name)
        ctx.timeline.mark("fault_end", f"{name} started again")

    def measure(ctx: DrillContext, m: Measured) -> list[Figure]:
        jobs = settle_jobs(ctx, job_wait)
        pending: float | None = jobs.unfinished
        if not jobs.total:
            pending = None  # no job to check: nothing was proved
        if not seen.running_jobs:
            ctx.reasons.append(
                "no job was running when the worker was killed: nothing was interrupted"
            )
        elif jobs.total and not jobs.redelivered and not jobs.unfinished:
            # A job is short: the ones seen running can finish between that look and the
            # SIGKILL. Then nothing was redelivered or lost, and redelivery went untested.
            ctx.reasons.append(
                "the jobs seen running finished before the kill landed: no job was "
                "interrupted, so redelivery was not exercised"
            )
        return [
            failed_figure(m, gates),
            Figure("jobs_unfinished", pending, "jobs", "<=", 0,
                   f"of {jobs.total} jobs of {jobs.submissions} acknowledged submissions "
                   f"still queued, running or failed {job_wait:g} s after the load "
                   f"({jobs.queued} queued, {jobs.running} running, "
                   f"{jobs.failed} failed)"),
            Figure("jobs_completed_twice", jobs.duplicates if jobs.total else None,
                   "jobs", "<=", 0,
                   "jobs whose completions counter passed 1 (exactly-once broken)"),
            Figure("dead_letters", jobs.dead, "jobs", "<=", 0,
                   "jobs given up on (none of these jobs is designed to fail)"),
            Figure("jobs_redelivered", jobs.redelivered, "jobs",
                   detail="jobs that ran more than once (attempts > 1) and still completed once"),
            Figure("settle_seconds", jobs.seconds, "s",
                   detail="from the end of the load until every job had finished"),
        ]  # fmt: skip

    return Spec(
        "queue-worker-kill",
        "SIGKILL the queue worker while jobs run: every job completes exactly once",
        inject,
        restore_touched,
        measure,
        load=Load(rate=8, users=8, reads=0, writes=1),
        before_seconds=4.0,
        after_seconds=5.0,
    )


def _first_worker(ctx: DrillContext) -> str:
    workers = faults.members_of_kind(ctx, "worker")
    if not workers:
        raise InputError("the stack runs no queue worker")
    return workers[0].name


def _requires_worker(state: StackState, options: DrillOptions) -> None:
    if not any(m.kind == "worker" for m in state.members):
        raise InputError("queue-worker-kill: the stack runs no queue worker")


WORKER_KILL = DrillKind("worker-kill", worker_kill, _requires_app("worker-kill"))
GRACEFUL_SHUTDOWN = DrillKind(
    "graceful-shutdown", graceful_shutdown, _requires_app("graceful-shutdown")
)
ROLLING_RESTART = DrillKind("rolling-restart", rolling_restart, _requires_app_pair)
QUEUE_WORKER_KILL = DrillKind("queue-worker-kill", queue_worker_kill, _requires_worker)
