"""`scalectl health` against the real local stack: the reference app's instances, nginx,
Redis and PostgreSQL. What the app answers (its /health* bodies, /metrics, the headers it
receives) is tested here, not against a look-alike.

One stack for the module. Tests that break something restore it (an instance restarted
under pressure is restarted normally, Redis is stopped and continued) or run last (an app
instance is killed; module teardown stops the stack)."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from scalectl.errors import ExitCode, InputError
from scalectl.health import probe_stack
from scalectl.stack import apikeys
from scalectl.stack.run import restart_member
from scalectl.stack.state import Member, load
from tests.conftest import Result
from tests.helpers.stack import running_stack

Cli = Callable[..., Result]
pytestmark = pytest.mark.stack
PATHS = ("/health", "/health/ready", "/health/comprehensive", "/metrics")
# /health/comprehensive's components about the host, not the app: they may warn on a busy
# machine, which is healthy unless --strict (test_host_pressure_...).
HOST = {
    "cpu:utilization",
    "memory:utilization",
    "system:loadAverage",
    "process:openFileDescriptors",
    "eventLoop:lag",
    "http:inFlight",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Path, Path]]:
    with running_stack("health") as (plan, state_dir):
        yield plan, state_dir


def member(state_dir: Path, name: str) -> Member:
    state = load(state_dir)
    assert state is not None
    found = state.member(name)
    assert found is not None and found.url
    return found


def endpoint_rows(payload: dict[str, object]) -> dict[tuple[str, str], dict[str, object]]:
    rows = payload["rows"]
    assert isinstance(rows, list)
    return {(r["target"], r["check"]): r for r in rows if r["component"] is None}


def app_rows(payload: dict[str, object]) -> list[dict[str, object]]:
    """Every row but the host-pressure components and the comprehensive report's own row
    (the worst of its components, host ones included)."""
    rows = payload["rows"]
    assert isinstance(rows, list)
    return [
        r
        for r in rows
        if r["component"] not in HOST
        and not (r["check"] == "/health/comprehensive" and r["component"] is None)
    ]


def get(url: str, times: int, headers: dict[str, str] | None = None) -> list[int]:
    with httpx.Client(timeout=5, trust_env=False, headers=headers) as client:
        return [client.get(url).status_code for _ in range(times)]


def test_a_healthy_stack_probes_every_instance_and_the_balancer(
    cli: Cli, stack: tuple[Path, Path]
) -> None:
    _, state_dir = stack
    result = cli("health", "--state-dir", state_dir, "--json")
    assert result.code == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    rows = endpoint_rows(payload)
    assert sorted(rows) == sorted(
        [(name, path) for name in ("api-1", "api-2") for path in PATHS]
        + [("nginx", "/health/ready")]
    )
    assert {r["status"] for r in app_rows(payload)} == {"pass"}
    assert rows[("api-2", "/health/ready")]["release_id"] == "local-api-2"
    # The comprehensive report shows each of its components: data stores, queues, host.
    components = {
        r["component"]
        for r in payload["rows"]
        if r["target"] == "api-1" and r["check"] == "/health/comprehensive" and r["component"]
    }
    assert {
        "postgresql:responseTime",
        "postgresql:migrated",
        "redis:responseTime",
        "queue:depth[analyse]",
        "queue:deadLetters[render]",
        "eventLoop:lag",
        "memory:utilization",
    } <= components


def test_probe_stack_for_other_commands(stack: tuple[Path, Path], tmp_path: Path) -> None:
    _, state_dir = stack
    summary = probe_stack(state_dir, timeout=5.0)
    assert summary.healthy, summary.lines()
    assert len(summary.lines()) == len(summary.rows)
    assert re.fullmatch(
        r"api-1 http://127\.0\.0\.1:\d+/health: pass \d+ ms; HTTP 200, release local-api-1",
        summary.lines()[0],
    )
    with pytest.raises(InputError, match="no stack is running here"):
        probe_stack(tmp_path)


def test_a_bare_url_of_the_app_gets_its_health_endpoints_and_metrics(
    cli: Cli, stack: tuple[Path, Path]
) -> None:
    _, state_dir = stack
    api1 = member(state_dir, "api-1")
    host = str(api1.url).removeprefix("http://")
    result = cli("health", str(api1.url), "--json")
    assert result.code == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    rows = endpoint_rows(payload)
    assert sorted(rows) == sorted((host, path) for path in PATHS)
    ready = rows[(host, "/health/ready")]
    assert (ready["status"], ready["detail"]) == ("pass", "HTTP 200, release local-api-1")
    assert ready["conditions"] == [
        {"condition": "[STATUS] == 200", "ok": True, "detail": "[STATUS] (200) == 200"}
    ]
    ready_components = [
        r["component"] for r in payload["rows"] if r["check"] == "/health/ready" and r["component"]
    ]
    assert ready_components == [
        "postgresql:responseTime",
        "postgresql:connections",
        "postgresql:migrated",
        "redis:responseTime",
        "redis:circuitBreaker",
    ]
    # The default /metrics conditions on the app's own counters: no request but probes yet,
    # and probes are left out of the share, so 0 of 0 is 0.
    ratio = rows[(host, "/metrics")]["conditions"][1]
    assert ratio == {
        "condition": '[METRIC].http_requests_total{status=~"5..",route!~"/health.*|/metrics"} / '
        '[METRIC].http_requests_total{route!~"/health.*|/metrics"} <= 0.01',
        "ok": True,
        "detail": '[METRIC].http_requests_total{status=~"5..",route!~"/health.*|/metrics"} / '
        '[METRIC].http_requests_total{route!~"/health.*|/metrics"} (0) <= 0.01',
    }
    table = cli("health", str(api1.url))
    assert table.code == 0
    assert "│   redis:circuitBreaker " in table.stdout
    assert re.search(r"healthy: \d+ pass(, \d+ warn)? \(\d+ rows\)\n$", table.stdout)


def test_conditions_on_the_apps_metrics(cli: Cli, stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    url = f"{member(state_dir, 'api-2').url}/metrics"
    ok = cli(
        "health", url,
        "-C", '[METRIC].queue_depth{queue="analyse"} < 100',
        "-C", "[METRIC].db_pool_requests_waiting < 5",
        "-C", "[RESPONSE_TIME] < 5000",
    )  # fmt: skip
    assert ok.code == 0, ok.stdout + ok.stderr
    bad = cli("health", url, "-C", '[METRIC].queue_depth{queue="analyse"} < 0', "--json")
    assert bad.code == ExitCode.CHECK_FAILED
    (row,) = json.loads(bad.stdout)["rows"]
    assert row["detail"] == '[METRIC].queue_depth{queue="analyse"} (0) < 0'


def test_headers_reach_the_app(cli: Cli, stack: tuple[Path, Path], tmp_path: Path) -> None:
    # The app logs each API request with the X-Request-ID it was given.
    _, state_dir = stack
    api2 = member(state_dir, "api-2")
    flag_id, config_id = f"probe-{secrets.token_hex(4)}", f"config-{secrets.token_hex(4)}"
    # /api needs an API key: the stack's own, sent as the bearer token.
    key = apikeys.auth_headers(state_dir)["Authorization"].removeprefix("Bearer ")
    result = cli(
        "health", f"{api2.url}/api/stats", "-H", f"X-Request-ID: {flag_id}",
        "--token-env", "PROBE_TOKEN", env={"PROBE_TOKEN": key},
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    assert key not in result.stdout + result.stderr
    config = tmp_path / "health.yaml"
    config.write_text(
        f"version: 1\ndefaults: {{headers: {{X-Request-ID: {config_id}, "
        f"Authorization: 'Bearer {key}'}}}}\n"
        f"endpoints: [{{name: stats, url: '{api2.url}/api/stats'}}]\n"
    )
    assert cli("health", "-c", config).code == 0

    def logged(request_id: str) -> list[dict[str, object]]:
        lines = Path(api2.log).read_text().splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [e for e in entries if e.get("request_id") == request_id]

    for request_id in (flag_id, config_id):
        # The app logs a request after answering it, so the line may lag the answer.
        deadline = time.monotonic() + 10
        while not logged(request_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        (entry,) = logged(request_id)
        assert (entry["route"], entry["status"]) == ("/api/stats", 200)


def test_rates_over_two_scrapes_of_the_apps_metrics(cli: Cli, stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    api2 = member(state_dir, "api-2")
    # Ten requests while the window is open: between the two scrapes.
    auth = apikeys.auth_headers(state_dir)
    sender = threading.Timer(1.0, get, args=(f"{api2.url}/api/stats", 10, auth))
    sender.start()
    try:
        result = cli(
            "health", f"{api2.url}/metrics", "--rate-window", "3s", "--json",
            "-C", 'increase([METRIC].http_requests_total{route="/api/stats"}) == 10',
            "-C", 'rate([METRIC].http_requests_total{route="/api/stats",status=~"5.."}) == 0',
        )  # fmt: skip
    finally:
        sender.join()
    assert result.code == 0, result.stdout + result.stderr
    (row,) = json.loads(result.stdout)["rows"]
    assert [c["detail"] for c in row["conditions"]] == [
        'increase([METRIC].http_requests_total{route="/api/stats"}) (10) == 10 (over 3.0s)',
        'rate([METRIC].http_requests_total{route="/api/stats",status=~"5.."}) (0) == 0 (over 3.0s)',
    ]
    # In rounds, each round's scrape is the next one's first: one --interval apart.
    rounds = cli(
        "health", f"{api2.url}/metrics", "--wait", "--interval", "1s", "--timeout", "30s",
        "-C", 'rate([METRIC].http_requests_total{status=~"5.."}) == 0', "--json",
    )  # fmt: skip
    assert rounds.code == 0, rounds.stdout + rounds.stderr
    payload = json.loads(rounds.stdout)
    assert payload["rounds"] == 2
    (condition,) = payload["rows"][0]["conditions"]
    assert re.fullmatch(r".* \(0\) == 0 \(over 1\.\ds\)", condition["detail"])


def test_wait_as_a_gate_and_targets_from_the_plan(cli: Cli, stack: tuple[Path, Path]) -> None:
    plan, state_dir = stack
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
    assert re.search(r"healthy after 2 round\(s\), [\d.]+s\n$", gate.stdout)
    as_json = cli("health", "--state-dir", state_dir, "--wait", "--interval", "200ms", "--json")
    payload = json.loads(as_json.stdout)
    assert (payload["mode"], payload["rounds"], payload["healthy"]) == ("wait", 2, True)
    assert {(c["state"], c["consecutive_successes"]) for c in payload["checks"]} == {("healthy", 2)}
    assert len(payload["checks"]) == 9  # 4 checks per instance and the balancer's


def test_watch_prints_plain_lines_and_transitions_off_a_terminal(
    cli: Cli, stack: tuple[Path, Path]
) -> None:
    _, state_dir = stack
    api1 = member(state_dir, "api-1")
    url = f"{api1.url}/health/ready"
    result = cli(
        "health", url, "--watch", "--timeout", "1s", "--interval", "200ms",
        "--failure-threshold", "1", "--success-threshold", "1",
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    host = str(api1.url).removeprefix("http://")
    assert f"{host} {url}: pending -> healthy (HTTP 200, release local-api-1)" in lines
    assert "checks: 1 healthy, 0 pending, 0 unhealthy" in lines
    assert lines[-1].startswith("no check unhealthy after ")
    assert "│ healthy │" in result.stdout  # the final table shows each check's state


def test_host_pressure_warns_without_failing_and_real_5xx_fail_metrics(
    cli: Cli, stack: tuple[Path, Path]
) -> None:
    # api-1 restarted with thresholds any host exceeds: memory and event-loop lag warn in
    # /health/comprehensive, as on a busy machine, and the app sheds every API request.
    _, state_dir = stack
    restart_member(
        state_dir,
        "api-1",
        overrides={"SHED_MAX_MEMORY_PERCENT": "0.01", "SHED_MAX_LOOP_LAG_MS": "0.0001"},
    )
    try:
        api1 = member(state_dir, "api-1")
        busy = cli("health", "--state-dir", state_dir, "--json")
        assert busy.code == 0, busy.stdout  # warn is healthy without --strict
        payload = json.loads(busy.stdout)
        comprehensive = {
            r["component"]: r["status"]
            for r in payload["rows"]
            if r["target"] == "api-1" and r["check"] == "/health/comprehensive"
        }
        assert comprehensive[None] == "warn"
        assert comprehensive["memory:utilization"] == "warn"
        strict = cli("health", "--state-dir", state_dir, "--strict")
        assert strict.code == ExitCode.CHECK_FAILED
        assert strict.stderr.endswith("(warn counts as fail)\n")

        auth = apikeys.auth_headers(state_dir)
        assert get(f"{api1.url}/api/stats", 5, auth) == [503] * 5  # shed: real 5xx
        metrics = cli("health", f"{api1.url}/metrics", "--json")
        assert metrics.code == ExitCode.CHECK_FAILED
        (row,) = json.loads(metrics.stdout)["rows"]
        assert row["detail"] == (
            '[METRIC].http_requests_total{status=~"5..",route!~"/health.*|/metrics"} / '
            '[METRIC].http_requests_total{route!~"/health.*|/metrics"} (1) <= 0.01'
        )
    finally:
        restart_member(state_dir, "api-1")
    assert cli("health", "--state-dir", state_dir).code == 0


def test_a_stopped_redis_is_a_warning_for_the_cache(cli: Cli, stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    redis = member(state_dir, "redis")
    os.kill(redis.pid, signal.SIGSTOP)
    try:
        result = cli("health", "--state-dir", state_dir, "--json")
        strict = cli("health", "--state-dir", state_dir, "--strict")
    finally:
        os.kill(redis.pid, signal.SIGCONT)
    assert result.code == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    cache = {
        (r["target"], r["check"]): r["status"]
        for r in payload["rows"]
        if r["component"] == "redis:responseTime"
    }
    assert cache == {
        ("api-1", "/health/ready"): "warn",
        ("api-1", "/health/comprehensive"): "warn",
        ("api-2", "/health/ready"): "warn",
        ("api-2", "/health/comprehensive"): "warn",
        ("nginx", "/health/ready"): "warn",
    }
    assert {
        key: row["status"] for key, row in endpoint_rows(payload).items() if key[1] != "/metrics"
    } == {
        **{(name, path): "warn" for name in ("api-1", "api-2") for path in PATHS[1:3]},
        ("api-1", "/health"): "pass",  # liveness touches no dependency
        ("api-2", "/health"): "pass",
        ("nginx", "/health/ready"): "warn",
    }
    assert strict.code == ExitCode.CHECK_FAILED
    assert "(warn counts as fail)" in strict.stderr


def test_a_dead_instance_is_found_behind_a_healthy_balancer(
    cli: Cli, stack: tuple[Path, Path]
) -> None:
    # Runs last in this module: api-2 stays down; module teardown stops the stack.
    _, state_dir = stack
    process = psutil.Process(member(state_dir, "api-2").pid)
    process.terminate()  # gunicorn's graceful stop: its workers exit with it
    process.wait(30)

    result = cli("health", "--state-dir", state_dir, "--json")
    assert result.code == ExitCode.CHECK_FAILED
    rows = endpoint_rows(json.loads(result.stdout))
    assert {
        path: (rows[("api-2", path)]["status"], rows[("api-2", path)]["detail"]) for path in PATHS
    } == {path: ("fail", "connection refused") for path in PATHS}
    # Redis may still be reconnecting after the previous test: warn is healthy here.
    assert rows[("nginx", "/health/ready")]["status"] in ("pass", "warn")
    assert rows[("api-1", "/health/ready")]["status"] in ("pass", "warn")
