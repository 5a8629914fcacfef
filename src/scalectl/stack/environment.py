"""What the reference app's processes of the local stack are given: its directory and the
environment its app instances, queue workers and key minting run with."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from scalectl import resources
from scalectl.plan import Prepared
from scalectl.plan.appenv import APP_DEFAULTS, app_env, shed_max_in_flight
from scalectl.stack import credentials
from scalectl.stack.process import child_environment
from scalectl.stack.state import StackState


def app_dir() -> Path:
    """The reference app's directory in the installed package: the working directory of
    its gunicorn clusters, Dramatiq workers and key minting."""
    return Path(str(resources.data_dir("reference_app")))


def base_env(prepared: Prepared, state: StackState, env: Mapping[str, str]) -> dict[str, str]:
    """The environment every process of the reference app starts with: the allowlisted
    part of `env`, the app's own settings `env` sets, the plan's settings, and the stack's
    URLs and password file. Raises InputError when a password file of the state dir is
    missing or not private (credentials.password); KeyError when `state` has no URLs yet."""
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
        # A job whose message the broker lost (this broker keeps no persistence) stays
        # 'queued' until cleanup sweeps it (default: after 300 s, every 60 s). Locally,
        # sweep within a minute so a drill's wait sees it recovered.
        "CLEANUP_STUCK_QUEUED_SECONDS": "30",
        "CLEANUP_INTERVAL_SECONDS": "10",
    }


def app_environment(prepared: Prepared) -> dict[str, str]:
    """Settings the reference app reads, from the plan (names match its fields): the
    plan-wide ones, and the first service's pool sizes, drain window and shedding limit."""
    plan = prepared.loaded.plan
    env = dict(app_env(plan))
    first = prepared.sizing.services[0]
    if plan.database and first.pool_max:  # pool_max 0: the service uses no database
        env["DATABASE_POOL_MIN"] = str(first.pool_min)
        env["DATABASE_POOL_MAX"] = str(first.pool_max)
        env["DATABASE_POOL_TIMEOUT"] = f"{plan.database.pool.acquire_timeout_seconds:g}"
        env["DATABASE_STATEMENT_TIMEOUT_MS"] = str(plan.database.pool.statement_timeout_ms)
    svc = next(iter(plan.services.values()))
    env["GRACEFUL_TIMEOUT"] = str(svc.graceful_shutdown_seconds)
    env["SHED_MAX_IN_FLIGHT"] = str(shed_max_in_flight(plan, svc, first))
    return env
