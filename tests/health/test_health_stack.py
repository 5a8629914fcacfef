"""`scalectl health` against the real local stack: instances, nginx, Redis and PostgreSQL.

One stack for the module. Tests that break something restore it (Redis is stopped and
continued) or run last (an app instance is killed; module teardown stops the stack)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from scalectl.errors import ExitCode, InputError
from scalectl.health import probe_stack
from scalectl.stack.state import load
from tests.conftest import Result
from tests.stack.conftest import local_plan

Cli = Callable[..., Result]
pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    from scalectl.cli import run

    root = tmp_path_factory.mktemp("health-stack")
    plan, state_dir = local_plan(root), root / "state"
    code = run(
        ["stack", "up", "--plan", str(plan), "--state-dir", str(state_dir), "--timeout", "90"]
    )
    assert code == 0, "stack up failed; see the output above"
    yield plan, state_dir
    run(["stack", "down", "--state-dir", str(state_dir)])


def endpoint_rows(payload: dict[str, object]) -> dict[tuple[str, str], dict[str, object]]:
    rows = payload["rows"]
    assert isinstance(rows, list)
    return {(r["target"], r["check"]): r for r in rows if r["component"] is None}


def test_a_healthy_stack_probes_every_instance_and_the_balancer(
    cli: Cli, stack: tuple[Path, Path]
) -> None:
    _, state_dir = stack
    result = cli("health", "--state-dir", state_dir, "--json")
    assert result.code == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    rows = endpoint_rows(payload)
    assert sorted(rows) == [
        ("api-1", "/health/ready"),
        ("api-1", "/metrics"),
        ("api-2", "/health/ready"),
        ("api-2", "/metrics"),
        ("nginx", "/health/ready"),
    ]
    assert {r["status"] for r in payload["rows"]} == {"pass"}
    assert rows[("api-2", "/health/ready")]["release_id"] == "local-api-2"
    components = {r["component"] for r in payload["rows"] if r["target"] == "api-1"}
    assert {"postgresql:responseTime", "postgresql:migrated", "redis:responseTime"} <= components


def test_probe_stack_for_other_commands(stack: tuple[Path, Path], tmp_path: Path) -> None:
    _, state_dir = stack
    summary = probe_stack(state_dir, timeout=5.0)
    assert summary.healthy, summary.lines()
    assert len(summary.lines()) == len(summary.rows)
    assert re.fullmatch(
        r"api-1 http://127\.0\.0\.1:\d+/health/ready: pass \d+ ms; HTTP 200, release local-api-1",
        summary.lines()[0],
    )
    with pytest.raises(InputError, match="no stack is running here"):
        probe_stack(tmp_path)


def test_targets_from_the_plan_and_wait_as_a_gate(cli: Cli, stack: tuple[Path, Path]) -> None:
    plan, _ = stack
    result = cli("health", "--plan", plan, "--json")
    assert result.code == 0, result.stdout + result.stderr
    assert sorted({t for t, _ in endpoint_rows(json.loads(result.stdout))}) == [
        "api-1",
        "api-2",
        "balancer",
    ]
    started = time.monotonic()
    gate = cli("health", "--plan", plan, "--wait", "--timeout", "30s", "--interval", "300ms")
    assert gate.code == 0, gate.stdout + gate.stderr
    assert time.monotonic() - started < 10


def test_a_stopped_redis_is_a_warning_for_the_cache(cli: Cli, stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    state = load(state_dir)
    assert state is not None
    redis = state.member("redis")
    assert redis is not None
    os.kill(redis.pid, signal.SIGSTOP)
    try:
        result = cli("health", "--state-dir", state_dir, "--json")
        strict = cli("health", "--state-dir", state_dir, "--strict")
    finally:
        os.kill(redis.pid, signal.SIGCONT)
    assert result.code == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    cache = [r for r in payload["rows"] if r["component"] == "redis:responseTime"]
    assert {r["target"] for r in cache} == {"api-1", "api-2", "nginx"}
    assert {r["status"] for r in cache} == {"warn"}
    assert {r["status"] for r in endpoint_rows(payload).values() if r["check"] != "/metrics"} == {
        "warn"
    }
    assert strict.code == ExitCode.CHECK_FAILED
    assert "(--strict: warn counts)" in strict.stderr


def test_a_dead_instance_is_found_behind_a_healthy_balancer(
    cli: Cli, stack: tuple[Path, Path]
) -> None:
    # Runs last in this module: api-2 stays down; module teardown stops the stack.
    _, state_dir = stack
    state = load(state_dir)
    assert state is not None
    victim = state.member("api-2")
    assert victim is not None
    process = psutil.Process(victim.pid)
    process.terminate()  # gunicorn's graceful stop: its workers exit with it
    process.wait(30)

    result = cli("health", "--state-dir", state_dir, "--json")
    assert result.code == ExitCode.CHECK_FAILED
    rows = endpoint_rows(json.loads(result.stdout))
    assert rows[("api-2", "/health/ready")]["status"] == "fail"
    assert rows[("api-2", "/health/ready")]["detail"] == "connection refused"
    assert rows[("api-2", "/metrics")]["status"] == "fail"
    # Redis may still be reconnecting after the previous test: warn is healthy here.
    assert rows[("nginx", "/health/ready")]["status"] in ("pass", "warn")
    assert rows[("api-1", "/health/ready")]["status"] in ("pass", "warn")
