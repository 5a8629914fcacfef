"""The drills by name (`scalectl drill NAME`, a checklist's `drill` item), and what picks
them: names to DrillKinds, the plan's gates, the Specs checked before any load starts.

Each drill is declared in scalectl.drill.kinds. Faults act only on members of the local
stack (scalectl.drill.faults); every restore is idempotent and also runs after a failure or
Ctrl-C (scalectl.drill.restore).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from scalectl.drill.engine import Spec
from scalectl.drill.kinds.base import DrillGates, DrillKind, DrillOptions
from scalectl.drill.kinds.outages import POSTGRES_OUTAGE, REDIS_OUTAGE
from scalectl.drill.kinds.overload import OVERLOAD
from scalectl.drill.kinds.process import (
    GRACEFUL_SHUTDOWN,
    QUEUE_WORKER_KILL,
    ROLLING_RESTART,
    WORKER_KILL,
)
from scalectl.drill.kinds.slowdeps import SLOW_POSTGRES, SLOW_REDIS
from scalectl.errors import InputError
from scalectl.stack.state import StackState

DRILLS: dict[str, DrillKind] = {
    kind.name: kind
    for kind in (
        WORKER_KILL,
        ROLLING_RESTART,
        GRACEFUL_SHUTDOWN,
        REDIS_OUTAGE,
        POSTGRES_OUTAGE,
        SLOW_REDIS,
        SLOW_POSTGRES,
        QUEUE_WORKER_KILL,
        OVERLOAD,
    )
}


def resolve(names: list[str]) -> list[DrillKind]:
    """The drills `names` name (["all"]: every one, in DRILLS' order). Raises InputError
    for an unknown name, suggesting the nearest."""
    if names == ["all"]:
        return list(DRILLS.values())
    unknown = [n for n in names if n not in DRILLS]
    if unknown:
        from scalectl.usertext import did_you_mean

        raise InputError(
            f"unknown drill {unknown[0]}{did_you_mean(unknown[0], list(DRILLS))} "
            f"(drills: {', '.join(DRILLS)}, or all)"
        )
    return [DRILLS[n] for n in names]


def plan_gates(
    state: StackState, gates: DrillGates | None = None, min_availability: float | None = None
) -> DrillGates:
    """`gates` (the defaults when None) with min_availability as given, else the stack
    plan's SLO availability target (what users must see during a fault too), else the
    gates' own. Raises nothing: an unreadable plan leaves the gates' own."""
    from scalectl.plan.load import load_plan

    gates = gates or DrillGates()
    if min_availability is None:
        try:
            plan = load_plan(Path(state.plan), state.profile).plan
        except InputError:
            return gates
        min_availability = float(plan.slo.availability.target)
    return dataclasses.replace(gates, min_availability=min_availability)


def prepare(
    kinds: list[DrillKind], state: StackState, gates: DrillGates, options: DrillOptions
) -> list[Spec]:
    """A Spec for each of `kinds`, every one checked against the stack `state` first.
    Raises InputError (exit 2) before any load starts when a drill cannot run as asked."""
    return [kind.prepare(state, gates, options) for kind in kinds]


def descriptions() -> dict[str, str]:
    """What each drill does, by name, with the default gates and options."""
    return {name: kind(DrillGates()).description for name, kind in DRILLS.items()}
