"""`scalectl stack down` against the real stack: idle, it stops without waiting out any drain
window; busy, it still lets a request and a job in flight finish; after a crash or twice in
a row, it cleans up and leaves no process behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from scalectl.stack import apikeys, credentials
from scalectl.stack.process import port_in_use, wait_for
from scalectl.stack.run import restart_member
from scalectl.stack.servers import start_postgres
from scalectl.stack.state import StackState, load
from tests.conftest import Result
from tests.helpers.stack import local_plan

Cli = Callable[..., Result]
pytestmark = pytest.mark.stack

# Far below the reference plan's drain windows (apps 20 s, workers 30 s) and the 17 s an idle
# down used to take; the benchmark (bench/stack_lifecycle_bench.py) measures the real figure.
IDLE_DOWN_BOUND_SECONDS = 12.0


@contextmanager
def fresh_stack(
    cli: Cli, edit: Callable[[str], str] = str, *, detached: bool = False
) -> Iterator[tuple[Path, Path]]:
    """A stack on free ports, its plan text passed through `edit`: (plan, state_dir). The
    test brings it down (down again here is a no-op). Not under pytest's basetemp, for
    PostgreSQL's unprivileged account (conftest.py).

    `detached`: started by a `scalectl stack up` subprocess, as a user does, so the stack's
    processes are not this test's children but PID 1's once that command exits (which is
    what made an idle down take 17 s: see scalectl.stack.process.wait_gone)."""
    root = Path(tempfile.mkdtemp(prefix="scalectl-down-"))
    root.chmod(0o711)  # PostgreSQL's account traverses it (docs/stack.md)
    plan, state_dir = local_plan(root), root / "state"
    plan.write_text(edit(plan.read_text()))
    args = ["stack", "up", "--plan", str(plan), "--state-dir", str(state_dir), "--timeout", "90"]
    try:
        if detached:
            done = subprocess.run(
                [sys.executable, "-m", "scalectl", *args],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
        else:
            up = cli(*args)
            assert up.code == 0, up.stdout + up.stderr
        yield plan, state_dir
    finally:
        cli("stack", "down", "--state-dir", state_dir)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def stack_dir(cli: Cli) -> Iterator[Path]:
    with fresh_stack(cli) as (_, state_dir):
        yield state_dir


@pytest.fixture
def detached_stack_dir(cli: Cli) -> Iterator[Path]:
    with fresh_stack(cli, detached=True) as (_, state_dir):
        yield state_dir


def _everything(state: StackState) -> tuple[list[psutil.Process], list[int]]:
    procs = []
    for member in state.members:
        proc = psutil.Process(member.pid)
        procs += [proc, *proc.children(recursive=True)]
    return procs, [m.port for m in state.members if m.port]


def _assert_nothing_left(procs: list[psutil.Process], ports: list[int]) -> None:
    left = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, [(p.pid, p.name()) for p in left]
    assert not [p for p in ports if port_in_use(p)]


def _down(cli: Cli, state_dir: Path) -> tuple[Result, float]:
    start = time.monotonic()
    result = cli("stack", "down", "--state-dir", state_dir, "--json")
    return result, time.monotonic() - start


def test_idle_down_is_quick_and_leaves_nothing(cli: Cli, detached_stack_dir: Path) -> None:
    stack_dir = detached_stack_dir
    state = load(stack_dir)
    assert state is not None
    procs, ports = _everything(state)
    with httpx.Client(base_url=state.urls["app"], timeout=10) as client:
        # Keep-alive connections from the client to nginx and from nginx to the apps.
        for _ in range(20):
            assert client.get("/health").status_code == 200
        result, took = _down(cli, stack_dir)
    assert result.code == 0, result.stdout + result.stderr
    stopped = json.loads(result.stdout)["stopped"]
    assert {s["name"] for s in stopped} == {m.name for m in state.members}
    assert all(s["graceful"] for s in stopped), stopped
    assert took < IDLE_DOWN_BOUND_SECONDS, stopped
    _assert_nothing_left(procs, ports)
    assert load(stack_dir) is None


def test_down_lets_a_request_and_a_job_in_flight_finish(cli: Cli, stack_dir: Path) -> None:
    # A job of a few seconds of CPU (sha256 rounds), far inside the worker's 30 s drain.
    restart_member(stack_dir, "worker-jobs", overrides={"ANALYSIS_WORK_FACTOR": "6000000"})
    state = load(stack_dir)
    assert state is not None
    base = state.urls["app"]
    answers: list[httpx.Response] = []
    auth = apikeys.auth_headers(stack_dir)
    with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
        created = client.post("/api/submissions", json={"title": "in flight", "content": "Python"})
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]

        def running() -> bool:
            return bool(client.get(f"/api/jobs/{job_id}").json()["status"] == "running")

        assert wait_for(running, timeout=30, interval=0.1), client.get(f"/api/jobs/{job_id}")
        slow = threading.Thread(
            target=lambda: answers.append(
                httpx.get(f"{base}/api/debug/sleep", params={"ms": 3000}, headers=auth, timeout=30)
            )
        )
        slow.start()
        time.sleep(0.5)  # through nginx, accepted by an app and sleeping
        result, took = _down(cli, stack_dir)
        slow.join(30)
    assert result.code == 0, result.stdout + result.stderr
    assert [r.status_code for r in answers] == [200]
    assert answers[0].json()["slept_ms"] == 3000
    stopped = json.loads(result.stdout)["stopped"]
    assert all(s["graceful"] for s in stopped), stopped
    assert took >= 2.5  # it waited for the request rather than cutting it off

    # The job finished during the worker's drain: its row says so (PostgreSQL started again
    # on the stack's data directory, then stopped).
    pg = start_postgres(
        stack_dir / "postgres" / "data",
        log=stack_dir / "check-postgres.log",
        password=credentials.password(stack_dir, "postgres"),
        boundary=stack_dir,
    )
    try:
        import psycopg

        url = pg.url.rsplit("/", 1)[0] + "/refapp"
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT status, completions FROM jobs WHERE id = %s", (job_id,)
            ).fetchone()
        assert row == ("done", 1)
    finally:
        pg.stop()


def test_down_after_crashed_members_then_again(cli: Cli, detached_stack_dir: Path) -> None:
    stack_dir = detached_stack_dir
    state = load(stack_dir)
    assert state is not None
    procs, ports = _everything(state)
    # Masters killed outright: their workers (gunicorn's, Dramatiq's processes and its metrics
    # exporter) are left behind in the member's process group, still holding ports.
    for name in ("api-1", "worker-jobs"):
        member = state.member(name)
        assert member is not None
        children = psutil.Process(member.pid).children(recursive=True)
        os.kill(member.pid, signal.SIGKILL)
        if name == "worker-jobs":  # Dramatiq's processes outlive their master
            time.sleep(1)
            assert [c for c in children if c.is_running()], "no orphans to clean up"
    redis = state.member("redis")
    assert redis is not None
    os.killpg(redis.pid, signal.SIGKILL)

    result, took = _down(cli, stack_dir)
    assert result.code == 0, result.stdout + result.stderr
    stopped = {s["name"]: s["graceful"] for s in json.loads(result.stdout)["stopped"]}
    assert not stopped["api-1"] and not stopped["worker-jobs"] and not stopped["redis"]
    assert stopped["api-2"] and stopped["postgres"]
    assert took < IDLE_DOWN_BOUND_SECONDS
    _assert_nothing_left(procs, ports)

    again, took = _down(cli, stack_dir)
    assert again.code == 0
    assert json.loads(again.stdout) == {"ok": True, "stopped": []}
    assert took < 5


def _job(client: httpx.Client, job_id: str) -> str:
    return str(client.get(f"/api/jobs/{job_id}").json()["status"])


def test_a_job_cut_off_by_the_drain_window_runs_again_after_up(cli: Cli) -> None:
    # The worker may drain for 2 s only; its job needs far longer.
    def short_drain(text: str) -> str:
        assert text.count("graceful_shutdown_seconds: 30") == 1  # the worker's
        return text.replace("graceful_shutdown_seconds: 30", "graceful_shutdown_seconds: 2")

    with fresh_stack(cli, short_drain) as (plan, state_dir):
        restart_member(state_dir, "worker-jobs", overrides={"ANALYSIS_WORK_FACTOR": "60000000"})
        state = load(state_dir)
        assert state is not None
        auth = apikeys.auth_headers(state_dir)
        with httpx.Client(base_url=state.urls["app"], headers=auth, timeout=10) as client:
            created = client.post("/api/submissions", json={"title": "cut off", "content": "SQL"})
            job_id = created.json()["job_id"]
            assert wait_for(lambda: _job(client, job_id) == "running", timeout=30, interval=0.1)
        result, _ = _down(cli, state_dir)
        assert result.code == 0, result.stdout + result.stderr

        # The broker kept the unacknowledged message; the next stack's workers (the plan's
        # normal work factor) redeliver it once the dead worker's heartbeat is stale.
        up = cli("stack", "up", "--plan", plan, "--state-dir", state_dir, "--timeout", "90")
        assert up.code == 0, up.stdout + up.stderr
        state = load(state_dir)
        assert state is not None
        # The same state dir keeps its key pool across down / up.
        assert apikeys.auth_headers(state_dir) == auth
        with httpx.Client(base_url=state.urls["app"], headers=auth, timeout=10) as client:
            done = wait_for(lambda: _job(client, job_id) == "done", timeout=60, interval=0.5)
            assert done, client.get(f"/api/jobs/{job_id}").json()
            assert client.get(f"/api/jobs/{job_id}").json()["attempts"] == 2
