"""The drills: what each injects, how it restores, what it measures and its thresholds.

Each drill is a `Spec` for the engine. Faults act only on members of the local stack
(scalectl.drill.faults); every restore is idempotent and also runs after a failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from scalectl.drill import faults
from scalectl.drill import figures as fig
from scalectl.drill.engine import (
    MAX_LOAD_SECONDS,
    Context,
    Load,
    Measured,
    Spec,
    drill_locustfile,
)
from scalectl.drill.model import Figure
from scalectl.errors import InputError
from scalectl.stack import apikeys
from scalectl.stack.balancer import drained
from scalectl.stack.state import StackState


@dataclass(frozen=True)
class Thresholds:
    """Verdict limits (flags of `scalectl drill`; documented in docs/drills.md)."""

    max_failed: int = 0  # user-visible failed requests
    max_replacement_s: float = 10.0  # worker-kill: until the master forked a new worker
    min_availability: float = 0.99  # share of requests answered during an outage
    max_recovery_s: float = 10.0  # from the fault's end to 3 s without failures
    max_fail_fast_ms: float = 1000.0  # postgres-outage: p95 of failing writes
    outage_s: float = 8.0  # how long redis/postgres stay down
    job_wait_s: float = 90.0  # queue-worker-kill: for every job to finish afterwards


def _touch(ctx: Context, name: str) -> None:
    """Record that this drill is about to act on a member: only those are ever restored."""
    touched: set[str] = ctx.data.setdefault("touched", set())
    touched.add(name)


# The fault thread and the restore (main thread) may both restart members: one at a time,
# so a member is never started twice and no state.json write is lost.
RESTART_LOCK = threading.RLock()


def restart(ctx: Context, name: str, drain: bool = True) -> None:
    """restart_member under RESTART_LOCK (stop if alive, start as `stack up` did)."""
    from scalectl.stack.run import restart_member

    with RESTART_LOCK:
        restart_member(
            ctx.state_dir, name, environ=ctx.environ, progress=ctx.timeline.note, drain=drain
        )


def _start_again(ctx: Context, name: str) -> None:
    """Start a member this drill acted on again, unless it runs."""
    from scalectl.stack.run import restart_member

    with RESTART_LOCK:
        if name not in ctx.data.get("touched", set()) or faults.alive(ctx, name):
            return
        ctx.timeline.note(f"restarting {name}")
        restart_member(ctx.state_dir, name, environ=ctx.environ, progress=ctx.timeline.note)
        ctx.timeline.note(f"{name} healthy again")


def restore_touched(ctx: Context) -> None:
    """The restore of every drill: whatever it stopped or killed runs again afterwards,
    also when the drill failed half-way or was interrupted."""
    for name in sorted(ctx.data.get("touched", set())):
        _start_again(ctx, name)


def _recovery(m: Measured, t: Thresholds, since: str) -> Figure:
    value = fig.recovery_seconds(m)
    detail = f"{since} to {fig.RECOVERED_AFTER} s without a failure"
    if value is None:
        observed = fig.observed_after(m)
        if observed is not None and observed > t.max_recovery_s:
            # Not recovered for longer than allowed: that is a failure, not a missing figure.
            value = observed
            detail += f" (not recovered in the {observed:g} s observed)"
        else:
            detail += " (not seen in the load after the fault: a longer --after may show it)"
    return Figure("recovery_seconds", value, "s", "<=", t.max_recovery_s, detail)


def _first_app(ctx: Context) -> str:
    apps = faults.members_of_kind(ctx, "app")
    if not apps:
        raise InputError("the stack runs no app instance")
    return apps[0].name


def _failed_figure(
    m: Measured, t: Thresholds, phases: tuple[str, ...] = ("during", "after")
) -> Figure:
    requests, failures = fig.counts(m, phases)
    return Figure(
        "failed_requests",
        failures,
        "requests",
        "<=",
        t.max_failed,
        f"of {requests} during and after the fault",
    )


# --- worker-kill --------------------------------------------------------------------------


def worker_kill(t: Thresholds, instance: str | None = None, direct: bool = False) -> Spec:
    def inject(ctx: Context) -> None:
        name = instance or _first_app(ctx)
        master = faults.process(ctx, name)
        workers = faults.children(master)
        port = faults.member(ctx, name).port
        # Slow requests through the drill's own target (nginx, or the instance with
        # --direct), so the killed worker surely has requests in flight.
        held = Held(
            ctx.url,
            2 * len(workers) * len(faults.members_of_kind(ctx, "app")),
            apikeys.auth_headers(ctx.state_dir),
        )
        victim = faults.busiest_child(master, port)
        _touch(ctx, name)
        ctx.timeline.mark("fault_start", f"SIGKILL gunicorn worker {victim.pid} of {name}")
        faults.kill(victim)
        m = faults.member(ctx, name)
        seconds = faults.wait_replaced(
            master,
            {w.pid for w in workers},
            victim.pid,
            m.url,
            timeout=60,
            auth=apikeys.auth_headers(ctx.state_dir),
        )
        ctx.timeline.mark(
            "fault_end",
            f"{name}: a new worker served a request after {seconds} s"
            if seconds is not None
            else f"{name}: no new worker served a request within 60 s",
        )
        completed = held.finish()
        ctx.figures.append(
            Figure("replacement_seconds", 60.0 if seconds is None else seconds, "s", "<=",
                   t.max_replacement_s,
                   f"until a new worker forked by {name}'s master answered a request"
                   + (" (none within 60 s)" if seconds is None else ""))
        )  # fmt: skip
        ctx.figures.append(
            Figure("in_flight_failed", held.count - completed, "requests", "<=", t.max_failed,
                   f"of {held.count} slow requests in flight when the worker died: {held.detail()}")
        )  # fmt: skip
        ctx.data["instance"] = name

    def url(state: object) -> str:
        from scalectl.stack.state import StackState

        assert isinstance(state, StackState)
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
        lambda ctx, m: [_failed_figure(m, t)],
        url=url,
    )


# --- graceful-shutdown --------------------------------------------------------------------

SLOW_MS = 2000  # requests held in flight at the SIGTERM


def graceful_shutdown(t: Thresholds, instance: str | None = None, drain: bool = True) -> Spec:
    def inject(ctx: Context) -> None:
        name = instance or _first_app(ctx)
        ctx.data["instance"] = name
        m = faults.member(ctx, name)
        master = faults.process(ctx, name)
        auth = apikeys.auth_headers(ctx.state_dir)
        held = Held(f"{m.url}", max(2, 2 * len(faults.children(master))), auth)
        ctx.timeline.mark(
            "fault_start", f"SIGTERM {name} with {held.count} slow requests in flight"
        )
        _touch(ctx, name)
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
            _start_again(ctx, name)
        ctx.timeline.mark("fault_end", f"{name} started again")

    return Spec(
        "graceful-shutdown",
        "SIGTERM an app instance under load: requests in flight must complete",
        inject,
        restore_touched,
        lambda ctx, m: [_failed_figure(m, t)],
    )


class Held:
    """`count` slow requests (the stack's /api/debug/sleep) sent to `base` and held in
    flight while the fault hits: their answers say whether in-flight work survived it."""

    def __init__(self, base: str, count: int, auth: dict[str, str]) -> None:
        self.count = count
        self.auth = auth  # /api needs a key
        self.statuses: list[int | str | None] = [None] * count
        self.threads = [
            threading.Thread(target=self._one, args=(base, i), daemon=True) for i in range(count)
        ]
        for thread in self.threads:
            thread.start()
        time.sleep(0.5)  # accepted and sleeping in the app

    def _one(self, base: str, index: int) -> None:
        try:
            response = httpx.get(
                f"{base}/api/debug/sleep",
                params={"ms": SLOW_MS},
                headers=self.auth,
                timeout=SLOW_MS / 1000 + 20,
                trust_env=False,  # loopback only, never through an HTTP_PROXY
            )
            self.statuses[index] = response.status_code
        except httpx.HTTPError as exc:
            self.statuses[index] = type(exc).__name__

    def finish(self) -> int:
        """Wait for every answer; the number that came back 200."""
        for thread in self.threads:
            thread.join(SLOW_MS / 1000 + 25)
        return sum(s == 200 for s in self.statuses)

    def detail(self) -> str:
        tally: dict[str, int] = {}
        for s in self.statuses:
            tally[str(s)] = tally.get(str(s), 0) + 1
        return ", ".join(f"{k} x{v}" for k, v in sorted(tally.items()))


# --- rolling-restart ----------------------------------------------------------------------


def rolling_restart(
    t: Thresholds,
    max_unavailable: int = 1,
    settle_seconds: float | None = None,
    drain: bool = True,
) -> Spec:
    """Restart instances a batch at a time, waiting after each batch until the balancer
    uses it again: nginx's passive checks keep a server it saw fail out of rotation for
    `fail_timeout`, even once it is healthy, so restarting the next one sooner leaves no
    live upstream (what this drill found in its first run)."""

    def inject(ctx: Context) -> None:
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
                _touch(ctx, name)
            if len(batch) == 1:
                restart(ctx, batch[0], drain)
            else:  # several instances down at once
                for name in batch:
                    faults.stop_group(faults.process(ctx, name), signal.SIGTERM, timeout=60)
                for name in batch:
                    _start_again(ctx, name)
            ctx.timeline.note(f"restarted {', '.join(batch)}; healthy")
            if i + max_unavailable < len(names) and ctx.wait(settle):
                return
        ctx.timeline.mark("fault_end", "every instance restarted")

    return Spec(
        "rolling-restart",
        f"restart the app instances {max_unavailable} at a time behind nginx under load",
        inject,
        restore_touched,
        lambda ctx, m: [_failed_figure(m, t)],
        after_seconds=5.0,
    )


def _fail_timeout(ctx: Context) -> float:
    from scalectl.plan.load import load_plan

    plan = load_plan(Path(ctx.state.plan), ctx.state.profile).plan
    return float(plan.load_balancer.fail_timeout_seconds)


# --- redis-outage -------------------------------------------------------------------------


def _outage(name: str, sig: int, t: Thresholds) -> Callable[[Context], None]:
    def inject(ctx: Context) -> None:
        proc = faults.process(ctx, name)
        _touch(ctx, name)
        ctx.timeline.mark("fault_start", f"stopping {name}")
        faults.stop_group(proc, sig, timeout=20)
        ctx.timeline.note(f"{name} stopped")
        ctx.wait(t.outage_s)
        _start_again(ctx, name)
        ctx.timeline.mark("fault_end", f"{name} back")

    return inject


def redis_outage(t: Thresholds) -> Spec:
    inject = _outage("redis", signal.SIGTERM, t)

    def measure(ctx: Context, m: Measured) -> list[Figure]:
        during = fig.probes_during(m)
        return [
            Figure("availability_during", fig.availability(m), "ratio", ">=", t.min_availability,
                   "requests answered as expected while the cache Redis was down"),
            _recovery(m, t, "from Redis back"),
            Figure("health_answered", fig.answered(during), "ratio", ">=", 1.0,
                   f"health probes answered during the outage: {fig.health_seen(during)}"),
        ]  # fmt: skip

    return Spec(
        "redis-outage",
        f"stop the cache Redis for {t.outage_s:g} s under read-heavy load",
        inject,
        restore_touched,
        measure,
        load=Load(rate=40, users=40, reads=19, writes=1),
    )


# --- postgres-outage ----------------------------------------------------------------------


def _reads(key: str) -> bool:
    return key.startswith("GET ")


def _writes(key: str) -> bool:
    return key.startswith("POST ")


def postgres_outage(t: Thresholds) -> Spec:
    inject = _outage("postgres", signal.SIGINT, t)

    def measure(ctx: Context, m: Measured) -> list[Figure]:
        lost, acked = _lost_writes(ctx)
        return [
            Figure("cached_read_availability", fig.availability(m, keys=_reads), "ratio", ">=",
                   t.min_availability, "cached reads answered 200 while PostgreSQL was down"),
            Figure("write_fail_p95_ms", fig.worst_p95(m, "during", _writes), "ms", "<=",
                   t.max_fail_fast_ms, "worst per-second p95 of writes during the outage"),
            Figure("lost_acknowledged_writes", lost, "writes", "<=", 0,
                   f"of {acked} answered 202, missing from PostgreSQL afterwards"),
            _recovery(m, t, "from PostgreSQL back"),
        ]  # fmt: skip

    return Spec(
        "postgres-outage",
        f"stop PostgreSQL for {t.outage_s:g} s: cached reads hold, writes fail fast, no "
        "acknowledged write is lost",
        inject,
        restore_touched,
        measure,
        load=Load(rate=40, users=40, reads=4, writes=1, pool=10),
        # The hot documents' jobs finish within ~10 s of the seeding and each completion
        # invalidates its cache entry; reads refill it. Fault only once that has settled,
        # so "cached reads" are cached (seen in this drill's first runs).
        before_seconds=15.0,
    )


def _lost_writes(ctx: Context) -> tuple[int | None, int]:
    try:
        acked = sorted(
            {line.strip() for line in ctx.acks_file.read_text().splitlines() if line.strip()}
        )
    except FileNotFoundError:
        return None, 0
    if not acked:
        return None, 0
    import psycopg

    from scalectl.stack.credentials import authenticated_url
    from scalectl.stack.state import load

    state = load(ctx.state_dir) or ctx.state
    url = authenticated_url(Path(state.state_dir), state.urls, "database")
    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute("SELECT id::text FROM submissions WHERE id::text = ANY(%s)", (acked,))
        present = {r[0] for r in rows}
    return len(set(acked) - present), len(acked)


# --- queue-worker-kill --------------------------------------------------------------------


def queue_worker_kill(t: Thresholds, worker: str | None = None) -> Spec:
    """SIGKILL a Dramatiq worker (its main process and every worker process) while jobs
    run, start it again, and check in PostgreSQL that every job of every acknowledged
    submission finished exactly once."""

    def inject(ctx: Context) -> None:
        name = worker or _first_worker(ctx)
        ctx.data["worker"] = name
        proc = faults.process(ctx, name)
        running = _wait_running_job(ctx, timeout=30)
        ctx.data["running_at_kill"] = running
        ctx.timeline.mark(
            "fault_start", f"SIGKILL {name} and its worker processes ({running} jobs running)"
        )
        _touch(ctx, name)
        group = [proc, *faults.children(proc)]
        for p in group:
            faults.kill(p)
        faults.stop_group(proc, signal.SIGKILL, timeout=10)
        ctx.timeline.note(f"{name}: {len(group)} processes killed")
        restart(ctx, name)
        ctx.timeline.mark("fault_end", f"{name} started again")

    def measure(ctx: Context, m: Measured) -> list[Figure]:
        jobs = _settle_jobs(ctx, t.job_wait_s)
        pending: float | None = jobs["queued"] + jobs["running"] + jobs["failed"]
        if not jobs["total"]:
            pending = None  # no job to check: nothing was proved
        if not ctx.data.get("running_at_kill"):
            ctx.data.setdefault("reasons", []).append(
                "no job was running when the worker was killed: nothing was interrupted"
            )
        return [
            _failed_figure(m, t),
            Figure("jobs_unfinished", pending, "jobs", "<=", 0,
                   f"of {jobs['total']} jobs of {jobs['submissions']} acknowledged submissions "
                   f"still queued, running or failed {t.job_wait_s:g} s after the load "
                   f"({jobs['queued']} queued, {jobs['running']} running, "
                   f"{jobs['failed']} failed)"),
            Figure("jobs_completed_twice", jobs["duplicates"] if jobs["total"] else None,
                   "jobs", "<=", 0,
                   "jobs whose completions counter passed 1 (exactly-once broken)"),
            Figure("dead_letters", jobs["dead"], "jobs", "<=", 0,
                   "jobs given up on (none of these jobs is designed to fail)"),
            Figure("jobs_redelivered", jobs["redelivered"], "jobs",
                   detail="jobs that ran more than once (attempts > 1) and still completed once"),
            Figure("settle_seconds", jobs["seconds"], "s",
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


def _first_worker(ctx: Context) -> str:
    workers = faults.members_of_kind(ctx, "worker")
    if not workers:
        raise InputError("the stack runs no queue worker")
    return workers[0].name


def _database_url(ctx: Context) -> str:
    from scalectl.stack.credentials import authenticated_url
    from scalectl.stack.state import load

    state = load(ctx.state_dir) or ctx.state
    return authenticated_url(Path(state.state_dir), state.urls, "database")


def _wait_running_job(ctx: Context, timeout: float) -> int:
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(_database_url(ctx), connect_timeout=5, autocommit=True) as conn:
        while time.monotonic() < deadline and not ctx.stopping.is_set():
            row = conn.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()
            if row and row[0]:
                return int(row[0])
            time.sleep(0.05)
    return 0


def _settle_jobs(ctx: Context, wait_s: float) -> dict[str, int | float]:
    """Wait (bounded) until no job of an acknowledged submission is queued or running; then
    count them by status."""
    import psycopg

    try:
        acked = sorted({x.strip() for x in ctx.acks_file.read_text().splitlines() if x.strip()})
    except FileNotFoundError:
        acked = []
    started = time.monotonic()
    query = """
        SELECT count(*) FILTER (WHERE status = 'queued'),
               count(*) FILTER (WHERE status = 'running'),
               count(*) FILTER (WHERE status = 'failed'),
               count(*) FILTER (WHERE status = 'dead'),
               count(*) FILTER (WHERE completions > 1),
               count(*) FILTER (WHERE attempts > 1 AND status = 'done'),
               count(*)
          FROM jobs WHERE submission_id::text = ANY(%s) AND kind IN ('analyse', 'render')
    """
    with psycopg.connect(_database_url(ctx), connect_timeout=5, autocommit=True) as conn:
        while True:
            row = conn.execute(query, (acked,)).fetchone()
            assert row is not None
            queued, running, failed, dead, duplicates, redelivered, total = (int(v) for v in row)
            waited = time.monotonic() - started
            if queued + running + failed == 0 or waited >= wait_s:
                break
            time.sleep(0.5)
    return {
        "submissions": len(acked),
        "queued": queued,
        "running": running,
        "failed": failed,
        "dead": dead,
        "duplicates": duplicates,
        "redelivered": redelivered,
        "total": total,
        "seconds": round(waited, 1),
    }


# --- overload -----------------------------------------------------------------------------


def overload(t: Thresholds, surge_users: int = 200, surge_seconds: float = 10.0) -> Spec:
    """A surge of users without think time (a second Locust run, the fault) on top of the
    measured load, half of it free tier: the free tier must be shed before premium, health
    must keep answering, and failures must stop once the surge ends."""

    def inject(ctx: Context) -> None:
        from scalectl.loadtest import runner

        config = runner.RunConfig(
            locustfile=drill_locustfile(),
            host=ctx.url,
            users=surge_users,
            spawn_rate=float(surge_users),
            run_time_seconds=max(1, round(surge_seconds)),
            processes=1,
            env={
                **ctx.environ,
                "SCALECTL_DRILL_FREE_SHARE": "0.5",
                "SCALECTL_WAIT_MIN": "0",
                "SCALECTL_WAIT_MAX": "0",
            },
        )
        ctx.timeline.mark(
            "fault_start", f"surge: {surge_users} users without think time for {surge_seconds:g} s"
        )
        outcome = runner.run(config, should_stop=ctx.stopping.is_set)
        total = outcome.results.total
        tiers = {"free": [0, 0], "premium": [0, 0]}
        for e in outcome.results.endpoints:
            counts = tiers["free" if e.key.endswith(" [free]") else "premium"]
            counts[0] += e.requests
            counts[1] += e.failures
        ctx.data["surge"] = tiers
        ctx.timeline.mark(
            "fault_end",
            f"surge over: {total.requests} requests at {total.rps:.0f}/s, "
            f"{total.error_rate:.1%} refused",
        )

    def measure(ctx: Context, m: Measured) -> list[Figure]:
        # What each tier saw: the measured load during the surge and the surge itself (which
        # has thousands of requests per tier, so a difference is not noise).
        tiers = ctx.data.get("surge", {"free": [0, 0], "premium": [0, 0]})
        for key, (req, fail) in _tier_counts(m).items():
            tiers[key][0] += req
            tiers[key][1] += fail
        refused = {k: (f / r if r else None) for k, (r, f) in tiers.items()}
        free, premium = refused["free"], refused["premium"]
        shed = bool(free) or bool(premium)
        ratio: float | None = None  # premium's refused share relative to free's
        if free and premium is not None:
            ratio = round(premium / free, 4)
        elif premium:  # premium refused while free was not: priority inverted
            ratio = 1.0
        during = fig.probes_during(m)
        return [
            Figure("free_refused", _round(free), "ratio", detail=f"of {tiers['free'][0]} "
                   "free-tier requests during the surge"),
            Figure("premium_refused", _round(premium), "ratio", detail=f"of "
                   f"{tiers['premium'][0]} premium requests during the surge"),
            Figure("premium_vs_free_refused", ratio, "ratio", "<=", PRIORITY_RATIO,
                   "premium's refused share over free's: low priority must be shed first, "
                   "premium at most half as often"
                   + ("" if shed else " (inconclusive: the surge shed nothing; raise --surge)")),
            Figure("health_answered", fig.answered(during), "ratio", ">=", 1.0,
                   f"health probes answered within 2 s during the surge: "
                   f"{fig.health_seen(during)}"),
            _recovery(m, t, "from the surge's end"),
        ]  # fmt: skip

    return Spec(
        "overload",
        f"a surge of {surge_users} users without think time for {surge_seconds:g} s: free "
        "tier shed first, health answers, recovery after",
        inject,
        restore_touched,  # nothing to restore: the surge ends by itself (bounded run time)
        measure,
        load=Load(rate=40, users=40, reads=9, writes=1, free_share=0.5),
    )


PRIORITY_RATIO = 0.5  # premium may be refused at most half as often as free


def _tier_counts(m: Measured) -> dict[str, tuple[int, int]]:
    free = fig.counts(m, ("during",), lambda k: k.endswith(" [free]"))
    premium = fig.counts(m, ("during",), lambda k: not k.endswith(" [free]"))
    return {"free": free, "premium": premium}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def plan_thresholds(state: StackState, **given: float | int) -> Thresholds:
    """Thresholds from flags, else from the stack's plan (the SLO's availability target is
    what users must see during a fault too), else the defaults."""
    from scalectl.plan.load import load_plan

    values = dict(given)
    if "min_availability" not in values:
        try:
            plan = load_plan(Path(state.plan), state.profile).plan
            values["min_availability"] = float(plan.slo.availability.target)
        except InputError:
            pass
    return Thresholds(**values)  # type: ignore[arg-type]


def preflight(name: str, state: StackState, t: Thresholds, **options: object) -> None:
    """Bad input for a drill, found before any load starts (exit 2)."""
    apps = [m.name for m in state.members if m.kind == "app"]
    workers = [m.name for m in state.members if m.kind == "worker"]
    instance = options.get("instance")
    if instance is not None and instance not in apps:
        hint = f" (app instances: {', '.join(apps)})" if apps else ""
        raise InputError(f"--instance {instance}: not an app instance of this stack{hint}")
    if name in ("worker-kill", "graceful-shutdown") and not apps:
        raise InputError(f"{name}: the stack runs no app instance")
    if name == "rolling-restart" and len(apps) < 2:
        raise InputError("rolling-restart: needs at least 2 app instances in the plan")
    if name == "queue-worker-kill" and not workers:
        raise InputError("queue-worker-kill: the stack runs no queue worker")
    before = float(options.get("before") or 0)  # type: ignore[arg-type]
    after = float(options.get("after") or 0)  # type: ignore[arg-type]
    outage = t.outage_s if name in ("redis-outage", "postgres-outage") else 0.0
    if before + outage + after > MAX_LOAD_SECONDS - 30:
        raise InputError(
            f"{name}: --before + --outage + --after is {before + outage + after:g} s; the "
            f"load stops by itself after {MAX_LOAD_SECONDS} s"
        )


DRILLS: dict[str, Callable[[Thresholds], Spec]] = {
    "worker-kill": worker_kill,
    "rolling-restart": rolling_restart,
    "graceful-shutdown": graceful_shutdown,
    "redis-outage": redis_outage,
    "postgres-outage": postgres_outage,
    "queue-worker-kill": queue_worker_kill,
    "overload": overload,
}
