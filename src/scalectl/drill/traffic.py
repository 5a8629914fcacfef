"""The drills' traffic: `scenarios/drill.py` in a Locust child, and the environment that
child gets (the allowlisted part of the caller's, the scenario's inputs, nothing else)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scalectl.stack.apikeys import KEY_ENV, KEYS_ENV

if TYPE_CHECKING:
    from scalectl.loadtest.runner import RunConfig

MAX_LOAD_SECONDS = 300
# Users finish the request they are in when the drill's load stops (Locust --stop-timeout),
# so an acknowledged submission is never cut off half-way.
DRILL_STOP_TIMEOUT_SECONDS = 10.0

# What scenarios/drill.py reads that a caller may set on purpose: API keys, the seed, think
# time, and the drill's own SCALECTL_DRILL_* knobs. A CI's tokens are not among them.
SCENARIO_INPUTS = frozenset(
    {
        KEYS_ENV,
        KEY_ENV,
        "SCALECTL_API_USER",
        "SCALECTL_API_TIER",
        "SCALECTL_SEED",
        "SCALECTL_WAIT_MIN",
        "SCALECTL_WAIT_MAX",
    }
)
SCENARIO_PREFIX = "SCALECTL_DRILL_"


@dataclass(frozen=True)
class Load:
    """The drill's traffic: `rate` tasks/s (open model) of reads and writes."""

    rate: float = 40.0
    users: int = 40
    reads: int = 9
    writes: int = 1
    free_share: float = 0.0
    pool: int = 20  # hot documents the reads pick from (Zipf)


def drill_locustfile() -> Path:
    """scenarios/drill.py, the load of every drill (and of overload's surge)."""
    from scalectl import resources

    return Path(str(resources.data_dir("scenarios").joinpath("drill.py")))


def scenario_environment(environ: Mapping[str, str], state_dir: Path) -> dict[str, str]:
    """The environment of a drill's Locust children: the allowlisted part of `environ`
    (scalectl.stack.process.child_environment), the scenario's inputs the caller set
    (SCENARIO_INPUTS, SCALECTL_DRILL_*), and the stack's API keys when the caller chose
    none (scalectl.stack.apikeys.scenario_env). Returns a new dict; raises nothing."""
    from scalectl.stack import apikeys
    from scalectl.stack.process import child_environment

    chosen = {
        k: v for k, v in environ.items() if k in SCENARIO_INPUTS or k.startswith(SCENARIO_PREFIX)
    }
    return {**child_environment(environ), **chosen, **apikeys.scenario_env(environ, state_dir)}


def load_config(
    load: Load, host: str, max_seconds: int, env: Mapping[str, str], *, acks_file: Path
) -> RunConfig:
    """The Locust run of a drill's measured load: `load` against `host` for at most
    `max_seconds`, with `env` (scenario_environment) and the drill's knobs, writing the id
    of every acknowledged submission to `acks_file`. Raises nothing."""
    from scalectl.loadtest.runner import RunConfig

    return RunConfig(
        locustfile=drill_locustfile(),
        host=host,
        users=load.users,
        spawn_rate=float(load.users),
        run_time_seconds=max_seconds,
        processes=1,
        env={
            **env,
            "SCALECTL_DRILL_READS": str(load.reads),
            "SCALECTL_DRILL_WRITES": str(load.writes),
            "SCALECTL_DRILL_FREE_SHARE": str(load.free_share),
            "SCALECTL_DRILL_POOL": str(load.pool),
            "SCALECTL_DRILL_ACKS": str(acks_file),
        },
        rate=load.rate,
        inherit_environment=False,
        stop_timeout_seconds=DRILL_STOP_TIMEOUT_SECONDS,
    )


def surge_config(host: str, users: int, seconds: float, env: Mapping[str, str]) -> RunConfig:
    """The Locust run of overload's surge: `users` without think time against `host` for
    `seconds` (at least 1), half of them free tier, with `env` (scenario_environment).
    Raises nothing."""
    from scalectl.loadtest.runner import RunConfig

    return RunConfig(
        locustfile=drill_locustfile(),
        host=host,
        users=users,
        spawn_rate=float(users),
        run_time_seconds=max(1, round(seconds)),
        processes=1,
        env={
            **env,
            "SCALECTL_DRILL_FREE_SHARE": "0.5",
            "SCALECTL_WAIT_MIN": "0",
            "SCALECTL_WAIT_MAX": "0",
        },
        inherit_environment=False,
        stop_timeout_seconds=DRILL_STOP_TIMEOUT_SECONDS,
    )
