"""What every drill declares (a DrillKind: its name, how its Spec is built from the gates
and the options that apply to it, what it needs of the stack) and the figures several
drills gate on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from scalectl.drill import figures as fig
from scalectl.drill.engine import Measured, Spec
from scalectl.drill.model import Figure
from scalectl.errors import InputError
from scalectl.stack.state import StackState


@dataclass(frozen=True)
class DrillGates:
    """The limits a drill's verdict rests on (flags of `scalectl drill`, documented in
    docs/drills.md)."""

    max_failed: int = 0  # user-visible failed requests
    max_replacement_s: float = 10.0  # worker-kill: until the master forked a new worker
    min_availability: float = 0.99  # share of requests answered during an outage
    max_recovery_s: float = 10.0  # from the fault's end to 3 s without failures
    max_fail_fast_ms: float = 1000.0  # postgres-outage: p95 of failing writes
    max_slow_p95_ms: float | None = None  # slow-*: p95 while slowed; None: the drill's own


@dataclass(frozen=True)
class DrillOptions:
    """How to drill (options of `scalectl drill`). Each drill reads the ones that apply to
    it and ignores the others; the defaults are the drills' own."""

    instance: str | None = None  # worker-kill, graceful-shutdown: None, the first instance
    direct: bool = False  # worker-kill: the load goes to the instance, not through nginx
    drain: bool = True  # graceful-shutdown, rolling-restart: leave nginx before stopping
    max_unavailable: int = 1  # rolling-restart: instances restarted at once
    settle_seconds: float | None = None  # rolling-restart; None: the plan's fail_timeout
    # redis-outage, postgres-outage, slow-redis, slow-postgres: how long the fault lasts
    outage_seconds: float = 8.0
    delay_seconds: float = 0.2  # slow-redis, slow-postgres: added to every round trip
    job_wait_seconds: float = 90.0  # queue-worker-kill: for every job to finish afterwards
    surge_users: int = 200  # overload: users without think time
    before_seconds: float | None = None  # load before the fault; None: the drill's own
    after_seconds: float | None = None  # load after the fault; None: the drill's own


Build = Callable[[DrillGates, DrillOptions], Spec]
Requires = Callable[[StackState, DrillOptions], None]


def _anything(state: StackState, options: DrillOptions) -> None:
    """A drill that needs nothing particular of the stack."""


@dataclass(frozen=True)
class DrillKind:
    """One drill as `scalectl drill` and checklists name it: `build` makes its Spec from the
    gates and options; `requires` refuses a stack or options it cannot run with (InputError)
    before any load starts."""

    name: str
    build: Build
    requires: Requires = _anything

    def __call__(self, gates: DrillGates, options: DrillOptions | None = None) -> Spec:
        """This drill's Spec for one run, with `options` (the defaults when None): their
        before and after seconds replace the drill's own when given. Raises nothing."""
        options = options or DrillOptions()
        spec = self.build(gates, options)
        if options.before_seconds is not None:
            spec = dataclasses.replace(spec, before_seconds=options.before_seconds)
        if options.after_seconds is not None:
            spec = dataclasses.replace(spec, after_seconds=options.after_seconds)
        return spec

    def prepare(self, state: StackState, gates: DrillGates, options: DrillOptions) -> Spec:
        """The Spec for one run against the stack `state`, checked first. Raises
        InputError (exit 2) when the stack or the options do not suit this drill, or when
        its load would outlast the bound the load stops at."""
        self.requires(state, options)
        spec = self(gates, options)
        total = spec.before_seconds + spec.fault_seconds + spec.after_seconds
        if total > spec.max_seconds - 30:
            raise InputError(
                f"{self.name}: --before + --outage + --after is {total:g} s; the load stops "
                f"by itself after {spec.max_seconds} s"
            )
        return spec


def app_names(state: StackState) -> list[str]:
    """The names of the stack's app instances, in state.json's order."""
    return [m.name for m in state.members if m.kind == "app"]


def failed_figure(
    m: Measured, gates: DrillGates, phases: tuple[str, ...] = ("during", "after")
) -> Figure:
    """failed_requests: the load's failures in `phases`, gated by max_failed."""
    requests, failures = fig.counts(m, phases)
    return Figure(
        "failed_requests",
        failures,
        "requests",
        "<=",
        gates.max_failed,
        f"of {requests} during and after the fault",
    )


def recovery_figure(m: Measured, gates: DrillGates, since: str) -> Figure:
    """recovery_seconds from the fault's end (`since` says what ended), gated by
    max_recovery_s. Not recovered within the load after the fault: a failure when that
    load lasted longer than the gate, else no value (inconclusive)."""
    value = fig.recovery_seconds(m)
    detail = f"{since} to {fig.RECOVERED_AFTER} s without a failure"
    if value is None:
        observed = fig.observed_after(m)
        if observed is not None and observed > gates.max_recovery_s:
            # Not recovered for longer than allowed: that is a failure, not a missing figure.
            value = observed
            detail += f" (not recovered in the {observed:g} s observed)"
        else:
            detail += " (not seen in the load after the fault: a longer --after may show it)"
    return Figure("recovery_seconds", value, "s", "<=", gates.max_recovery_s, detail)
