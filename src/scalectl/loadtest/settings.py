"""What one `scalectl loadtest run` sends and gates on, from its options: how long, how
many processes, which SLOs, which host (the running stack when none is given) with which
API keys, how many users, and whether to watch for abort criteria."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from scalectl.duration import parse_duration
from scalectl.errors import InputError, ScalectlError
from scalectl.loadtest import slo as slo_mod
from scalectl.loadtest.cpu import usable_cores
from scalectl.loadtest.evaluation import abort_breached
from scalectl.loadtest.ratecurve import RateCurve
from scalectl.loadtest.runlength import AUTO, rate_warning
from scalectl.loadtest.runner import (
    DEFAULT_MAX_RUN_SECONDS,
    OWNED_LONG_OPTIONS,
    OWNED_SHORT_OPTIONS,
    WORKER_WAIT_SECONDS,
)
from scalectl.loadtest.slo import SloSpec
from scalectl.loadtest.watch import GRACE_SECONDS, AbortCheck

STACK_STATE_DIR = Path(".scalectl/stack")
AT_TERMINAL_SECONDS = 24 * 3600  # a run without --run-time at a terminal; Ctrl-C ends it
DEFAULT_USERS = 10
DEFAULT_SPAWN_RATE = 10.0
MAX_OPEN_MODEL_USERS = 1000


def run_time_seconds(text: str) -> int:
    """Whole seconds for Locust's --run-time, in scalectl's one duration grammar (30s, 5m,
    1h30m, ...; scalectl.duration), rounded up. Raises InputError naming --run-time."""
    try:
        return max(1, math.ceil(parse_duration(text)))
    except ValueError as exc:
        raise InputError(f"--run-time {text}: {exc}") from None


def run_seconds(
    run_time: str | None,
    *,
    interactive: bool,
    max_run_time: float | None = None,
    stages: RateCurve | None = None,
) -> int:
    """How long the run lasts, warm-up included: --run-time, else a ramping rate's last
    point (at most --max-run-time, default 2 h), else --max-run-time when given (the bound
    of a LoadTestShape, which ends the run by itself; also of `auto`, which ends once every
    gate has its samples), else, only at a terminal where Ctrl-C ends it, a day. InputError
    without either when not at a terminal, as CI must end."""
    if run_time is None and stages is not None and stages.end > 0:
        return max(1, math.ceil(min(stages.end, max_run_time or DEFAULT_MAX_RUN_SECONDS)))
    if run_time == AUTO:
        # Ended once every gate has its samples (loadtest.runlength); this is the bound.
        return max(1, math.ceil(max_run_time or DEFAULT_MAX_RUN_SECONDS))
    if run_time is not None:
        return run_time_seconds(run_time)
    if max_run_time is not None:
        return max(1, math.ceil(max_run_time))
    if not interactive:
        raise InputError(
            "--run-time is required when not at a terminal (CI must end); for a locustfile "
            "with a LoadTestShape, which ends by itself, give --max-run-time instead"
        )
    return AT_TERMINAL_SECONDS


def process_count(value: str) -> int:
    """Locust processes from --processes: a number >= 1, or auto (one per core).
    Raises InputError for anything else."""
    if value == "auto":
        return usable_cores()
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"--processes {value}: expected a number >= 1 or auto")
    return int(value)


def locust_arguments(args: list[str] | None) -> tuple[str, ...]:
    """The arguments after `--`, for Locust as they are: a locustfile's own options
    (`@events.init_command_line_parser`), user class names. Raises InputError for one that
    scalectl sets itself (-H, -u, -r, -t, --headless, -f, --processes, ...), naming the
    scalectl option to use instead where there is one; abbreviations included, as Locust's
    parser accepts them."""
    refused = []
    for arg in args or ():
        if arg.startswith("--"):
            name = arg.split("=", 1)[0]
            if len(name) > 2 and any(owned.startswith(name) for owned in OWNED_LONG_OPTIONS):
                refused.append(arg)
        elif arg.startswith("-") and len(arg) > 1 and arg[1] in OWNED_SHORT_OPTIONS:
            refused.append(arg)
    if refused:
        raise InputError(
            f"after --: {', '.join(refused)} "
            f"{'is an option' if len(refused) == 1 else 'are options'} scalectl sets itself; "
            "give scalectl's own -H, -u, -r, -t, --tags, --stop-timeout or --processes "
            "before the --, and only the locustfile's own arguments after it"
        )
    return tuple(args or ())


def load_spec(slo: Path | None, plan: Path | None) -> SloSpec | None:
    """The SLOs to gate on: an SLO file's, a plan's `slo` section, or None for neither.
    Raises InputError when the file or the plan is not valid."""
    if slo is not None:
        return slo_mod.load_slo_file(slo)
    if plan is not None:
        from scalectl.plan.load import load_plan

        return slo_mod.from_plan(load_plan(plan).plan)
    return None


def rate_stages(
    option: str | None, rate: float | None, spec: SloSpec | None, where: str
) -> RateCurve | None:
    """The ramping rate to run: `--rate-stages` (`option`), else the SLO file's
    `rate_stages` unless `--rate` holds a rate instead; None for neither. `where` names the
    file in messages. Raises InputError for a malformed option or both --rate options."""
    if option is not None and rate is not None:
        raise InputError("give --rate or --rate-stages, not both")
    if option is not None:
        try:
            return RateCurve.parse(option)
        except ValueError as exc:
            raise InputError(f"--rate-stages {option}: {exc}") from None
    if rate is None and spec is not None and spec.rate_stages is not None:
        return spec.rate_curve
    return None


def load_shape(
    users: int | None, spawn_rate: float | None, rate: float | None
) -> tuple[int, float]:
    """Users and users started per second, given or by default. Closed model: 10 and 10/s.
    Open model (`rate` tasks/s, a ramping rate's peak): a user per task/s, at least 10, at
    most 1000, all started within a second."""
    if users is None:
        users = (
            DEFAULT_USERS
            if rate is None
            else min(max(DEFAULT_USERS, math.ceil(rate)), MAX_OPEN_MODEL_USERS)
        )
    if spawn_rate is None:
        spawn_rate = DEFAULT_SPAWN_RATE if rate is None else float(users)
    return users, spawn_rate


def design_rate(plan: Path | None) -> float | None:
    """The plan's design rate, requests/s: its first service's peak_rps × headroom (the
    service the scenarios' routes hit); None without a plan or a service."""
    if plan is None:
        return None
    from scalectl.plan.load import load_plan

    services = list(load_plan(plan).plan.services.values())
    if not services:
        return None
    return float(services[0].traffic.peak_rps * services[0].traffic.headroom)


def run_length_warning(
    spec: SloSpec | None, rate: float | None, plan_rate: float | None, measured_seconds: float
) -> str | None:
    """Before the run: why its -t cannot reach a verdict even at its best rate (--rate, else
    the plan's design rate), naming the gate and the time it needs; None when it can or no
    rate is known (loadtest.runlength)."""
    best = rate or plan_rate
    if spec is None or not best:
        return None
    source = "--rate" if rate else "the plan's design rate"
    warning = rate_warning(spec, best, measured_seconds)
    return None if warning is None else f"{warning} ({source} {best:g}/s)"


def abort_check(spec: SloSpec | None) -> AbortCheck | None:
    """The check a run makes every second when the SLOs have abort criteria; None without.
    Only with criteria: decoding the live histograms every second costs CPU that the load
    generator and the service under test share."""
    if spec is None or not spec.abort:
        return None
    return lambda r: abort_breached(spec, r.windows, measured_t=r.measured_t)


def worker_seconds(run_seconds: int) -> int:
    """How long a --worker runs at most: its master's time bound plus the master's wait for
    workers, after which the worker stops by itself."""
    return run_seconds + WORKER_WAIT_SECONDS + GRACE_SECONDS


def stack_url(state_dir: Path = STACK_STATE_DIR) -> str:
    """The app URL of the stack running in `state_dir`, the target when no --host is
    given. Raises InputError when none runs there."""
    from scalectl.stack.state import load

    state = load(state_dir)
    if state is None or "app" not in state.urls:
        raise InputError("no --host given and no `scalectl stack` is running here")
    return state.urls["app"]


def stack_keys_env(
    environ: Mapping[str, str],
    target: str,
    state_dir: Path = STACK_STATE_DIR,
    *,
    replicas: bool = False,
) -> dict[str, str]:
    """SCALECTL_API_KEYS_FILE of the stack in `state_dir` when `target` is one of its URLs,
    or with `replicas` one of its app instances' (`loadtest capacity` drives one replica),
    and the caller did not choose keys: never for another host. Empty otherwise, also when
    the stack's state cannot be read."""
    from scalectl.stack import apikeys
    from scalectl.stack.state import load

    try:
        state = load(state_dir)
    except ScalectlError:
        return {}
    if state is None:
        return {}
    urls = set(state.urls.values())
    if replicas:
        urls |= {m.url for m in state.members if m.kind == "app" and m.url}
    if target.rstrip("/") not in {url.rstrip("/") for url in urls}:
        return {}
    return apikeys.scenario_env(environ, state_dir)
