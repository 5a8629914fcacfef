"""`scalectl stack` against the real thing: PostgreSQL, Redis, gunicorn, Dramatiq, nginx."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from scalectl.errors import ExitCode
from scalectl.stack import apikeys
from scalectl.stack.process import port_in_use
from scalectl.stack.state import load
from tests.conftest import Result, reachable_dir
from tests.helpers.stack import local_plan, running_stack

Cli = Callable[..., Result]
pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Path, Path]]:
    with running_stack("stack-cli") as (plan, state_dir):
        yield plan, state_dir


def test_status_shows_every_service_healthy(cli: Cli, stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    result = cli("stack", "status", "--state-dir", state_dir, "--json")
    assert result.code == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    names = {m["name"] for m in payload["members"]}
    assert {"postgres", "redis", "broker", "api-1", "api-2", "worker-jobs"} <= names
    assert all(m["state"] == "running" for m in payload["members"])
    assert all(m["health"] in ("pass", "n/a") for m in payload["members"])
    assert {"database", "redis", "broker", "app"} <= set(payload["urls"])


def test_requests_flow_through_nginx_with_the_rendered_config(stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    state = load(state_dir)
    assert state is not None
    nginx = state.member("nginx")
    assert nginx is not None, state.notes
    rendered = (state_dir / "rendered" / "nginx" / "nginx.conf").read_bytes()
    assert (state_dir / "nginx" / "conf" / "nginx.conf").read_bytes() == rendered
    base = state.urls["app"]
    # The pool `stack up` minted (0600): /api needs a key, and answers 401 without one.
    assert stat.S_IMODE(apikeys.keys_file(state_dir).stat().st_mode) == 0o600
    assert httpx.get(base + "/api/stats", timeout=5).status_code == 401
    with httpx.Client(base_url=base, headers=apikeys.auth_headers(state_dir), timeout=5) as client:
        assert client.get("/nginx/health").text == "ok\n"
        created = client.post("/api/submissions", json={"title": "CV", "content": "Python and SQL"})
        assert created.status_code == 202
        got = client.get(f"/api/submissions/{created.json()['id']}")
        assert got.status_code == 200 and got.json()["title"] == "CV"


def test_second_up_says_already_up(cli: Cli, stack: tuple[Path, Path]) -> None:
    plan, state_dir = stack
    result = cli("stack", "up", "--plan", plan, "--state-dir", state_dir)
    assert result.code == 0
    assert "already up" in result.stdout


def test_logs_of_a_service(cli: Cli, stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    result = cli("stack", "logs", "postgres", "--state-dir", state_dir, "-n", "5")
    assert result.code == 0 and result.stdout.strip()
    wrong = cli("stack", "logs", "api1", "--state-dir", state_dir)
    assert wrong.code == ExitCode.BAD_INPUT
    assert "no service named 'api1'; did you mean 'api-1'?" in wrong.stderr


def test_busy_port_is_bad_input_and_starts_nothing(
    cli: Cli, stack: tuple[Path, Path], tmp_path: Path
) -> None:
    plan = local_plan(tmp_path)
    base = int(plan.read_text().split("base_port: ")[1].split()[0])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base))
        holder.listen()
        result = cli("stack", "up", "--plan", plan, "--state-dir", tmp_path / "s")
    assert result.code == ExitCode.BAD_INPUT
    assert f"busy: api instance port {base}" in result.stderr
    assert not (tmp_path / "s" / "state.json").exists()


def test_unknown_plan_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    result = cli("stack", "up", "--plan", tmp_path / "nope.yaml", "--state-dir", tmp_path / "s")
    assert result.code == ExitCode.BAD_INPUT
    assert "nope.yaml: no such file" in result.stderr


def test_status_without_a_stack(cli: Cli, tmp_path: Path) -> None:
    result = cli("stack", "status", "--state-dir", tmp_path)
    assert result.code == ExitCode.BAD_INPUT
    assert "no stack is running here" in result.stderr


def test_crash_is_noticed_stale_state_is_cleaned_and_down_leaves_nothing(
    cli: Cli, stack: tuple[Path, Path]
) -> None:
    # Runs last in this module: it kills a member and restarts the stack.
    plan, state_dir = stack
    state = load(state_dir)
    assert state is not None
    victim = state.member("redis")
    assert victim is not None
    os.kill(victim.pid, signal.SIGKILL)
    psutil.Process(victim.pid).wait(5)

    status = cli("stack", "status", "--state-dir", state_dir)
    assert status.code == ExitCode.CHECK_FAILED
    assert "redis: crashed" in status.stderr

    again = cli("stack", "up", "--plan", plan, "--state-dir", state_dir, "--timeout", "90")
    assert again.code == 0, again.stdout + again.stderr
    assert "found stale state from an earlier run" in again.stdout
    assert cli("stack", "status", "--state-dir", state_dir).code == 0

    fresh = load(state_dir)
    assert fresh is not None
    pids = [m.pid for m in fresh.members]
    ports = [m.port for m in fresh.members if m.port]
    down = cli("stack", "down", "--state-dir", state_dir)
    assert down.code == 0
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)
    assert not [p for p in ports if port_in_use(p)]
    assert load(state_dir) is None


def test_without_a_balancer(cli: Cli) -> None:
    with reachable_dir("no-balancer") as root:
        _without_a_balancer(cli, root)


def _without_a_balancer(cli: Cli, root: Path) -> None:
    plan = local_plan(root)
    state_dir = root / "s"
    result = cli("stack", "up", "--plan", plan, "--state-dir", state_dir, "--no-balancer")
    try:
        assert result.code == 0, result.stdout + result.stderr
        assert "no load balancer" in result.stdout
        state = load(state_dir)
        assert state is not None and state.member("nginx") is None
        assert httpx.get(state.urls["app"] + "/health", timeout=5).status_code == 200
    finally:
        cli("stack", "down", "--state-dir", state_dir)
