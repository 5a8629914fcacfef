"""The stack-facing verifiers against one real local stack (PostgreSQL, Redis, gunicorn,
Dramatiq, nginx, Prometheus), started once for the session (tests/checklist/conftest.py).

The shipped pre, post and deploy checklists run end to end first (the passing case of
every stack verifier; deploy last, as it restarts instances that Prometheus would then
see down until its next scrape), then each verifier's failing case, made real: slow requests
cut off by an instance that does not drain, a restore that fails, a target Prometheus sees
down. The tests that break the stack (a frozen instance, a stopped Redis, a killed
instance) come last and restore what they broke."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from scalectl.checklist.verifiers import Context
from scalectl.stack import apikeys, credentials
from scalectl.stack.process import free_port, wait_for
from scalectl.stack.run import restart_member
from scalectl.stack.state import load
from tests.checklist.conftest import check, checklist_file, write_report
from tests.conftest import ROOT, Result
from tests.drill.races import report_only_raced
from tests.health.server import serve

Cli = Callable[..., Result]
pytestmark = pytest.mark.stack
SCALECTL = Path(sys.executable).parent / "scalectl"
# Components of /health/comprehensive that describe the host, not the app: on a busy test
# machine they may warn, which is healthy (scalectl health counts warn as healthy unless
# --strict), so exact assertions leave them out.
HOST = {
    "cpu:utilization",
    "memory:utilization",
    "system:loadAverage",
    "process:openFileDescriptors",
    "eventLoop:lag",
    "http:inFlight",
}
# An evidence line of the health item: `api-1 http://127.0.0.1:P/path[ component]: status ...`
ROW = re.compile(
    r"^(\S+) http://127\.0\.0\.1:\d+(/\S*?)(?: (\S+))?: (pass|warn|fail)(?: \d+ ms)?(?:; (.*))?$"
)


def rows(evidence: object) -> dict[tuple[str, str, str | None], tuple[str, str]]:
    """The health item's evidence as {(target, path, component): (status, detail)}."""
    assert isinstance(evidence, list | tuple)
    out = {}
    for line in evidence:
        match = ROW.fullmatch(line)
        assert match, line
        target, path, component, status, detail = match.groups()
        out[(target, path, component)] = (status, detail or "")
    return out


def member(state_dir: Path, name: str) -> psutil.Process:
    state = load(state_dir)
    assert state is not None
    found = state.member(name)
    assert found is not None
    return psutil.Process(found.pid)


def healthy_again(state_dir: Path, timeout: float = 60) -> None:
    ctx = Context(state_dir=state_dir)
    assert wait_for(
        lambda: check("{kind: health}", ctx).status == "pass", timeout=timeout, interval=1
    )


def items(result: Result) -> dict[str, dict[str, object]]:
    assert result.stdout, result.stderr
    return {i["id"]: i for i in json.loads(result.stdout)["items"]}


def statuses(result: Result) -> dict[str, tuple[object, object]]:
    return {k: (v["status"], v["reused"]) for k, v in items(result).items()}


def test_pre_checklist_passes_against_the_stack(
    cli: Cli, stack: tuple[Path, Path], tmp_path: Path
) -> None:
    plan, state_dir = stack
    write_report(tmp_path / "report")
    answers = tmp_path / "answers.yaml"
    answers.write_text("benchmarks-established: {answer: yes, by: ci, note: bench/README.md}\n")
    result = cli(
        "checklist", "pre", "--plan", plan, "--state-dir", state_dir,
        "--report-dir", tmp_path / "report", "--answers", answers,
        "--progress-dir", tmp_path / "progress", "--json",
    )  # fmt: skip
    got = items(result)
    assert result.code == 0, json.dumps(got, indent=1)
    backup = got["backup-recovery"]["evidence"]
    assert isinstance(backup, list)
    # api_keys, submissions, jobs, analyses, reports, schema_migrations.
    assert re.fullmatch(r"pg_dump refapp: 6 tables, \d+ rows, \d+ KiB in [\d.]+s", backup[1])
    assert backup[2].startswith("pg_restore into scratch database scalectl_restore_")
    assert re.fullmatch(
        r"row counts match in all 6 tables: public.analyses \d+, public.api_keys 150, "
        r"public.jobs \d+, public.reports \d+, public.schema_migrations 1, "
        r"public.submissions 20",
        backup[3],
    )


def test_post_checklist_passes_against_the_stack(
    cli: Cli, stack: tuple[Path, Path], tmp_path: Path
) -> None:
    _, state_dir = stack
    answers = tmp_path / "answers.yaml"
    answers.write_text("autoscaling-working: {answer: yes, by: ci}\n")
    result = cli(
        "checklist", "post", "--state-dir", state_dir, "--answers", answers,
        "--progress-dir", tmp_path, "--markdown", tmp_path / "post.md", "--json",
    )  # fmt: skip
    got = items(result)
    assert result.code == 0, json.dumps(got, indent=1)
    monitoring = got["monitoring-active"]["evidence"]
    assert isinstance(monitoring, list)
    assert monitoring[1] == "targets: 3 of 3 up (api 2, jobs 1)"
    assert monitoring[-1] == "every rendered alert is loaded (11)"
    exposed = got["alerted-series-exposed"]["evidence"]
    assert isinstance(exposed, list)
    assert exposed[0] == (
        "6 series names used by 2 rule file(s): http_request_duration_seconds_bucket, "
        "http_requests_total, process_resident_memory_bytes, queue_dead_letters, queue_depth, "
        "queue_oldest_job_age_seconds"
    )
    slo = got["slo-within-targets"]["evidence"]
    assert isinstance(slo, list)
    assert slo[1].startswith("error rate 0.00% (0 5xx) vs SLO 1.00%: ok")
    assert (tmp_path / "post.md").read_text().startswith("## ✅ scalectl checklist post: complete")


def test_deploy_checklist_passes_against_the_stack(
    cli: Cli, stack: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, state_dir = stack
    # This project's rollback document, in a directory the drills may write reports to.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "rollback.md").write_bytes((ROOT / "docs" / "rollback.md").read_bytes())
    monkeypatch.chdir(tmp_path)
    result = cli(
        "checklist", "deploy", "--plan", plan, "--state-dir", state_dir,
        "--progress-dir", tmp_path / "progress", "--json",
    )  # fmt: skip
    got = items(result)
    # A drill may lose one POST to a keep-alive race (tests/drill/races.py), nothing else.
    reports = tmp_path / "drill-report"
    raced = [d for d, item in got.items() if item["status"] != "pass"]
    assert raced in ([], ["graceful-shutdown"], ["rolling-restart"]), json.dumps(got, indent=1)
    for d in raced:
        report = reports / d / "drill.json"
        assert report_only_raced(report), report.read_text()
    assert result.code == (1 if raced else 0), json.dumps(got, indent=1)
    for drill in {"graceful-shutdown", "rolling-restart"} - set(raced):
        evidence = got[drill]["evidence"]
        assert isinstance(evidence, list)
        assert evidence[0] == (
            f"{drill}: pass (report {tmp_path / 'drill-report' / drill / 'drill.json'})"
        ), evidence
    # strict: every row passes, each instance directly and the balancer.
    health = rows(got["health-checks"]["evidence"])
    endpoints = {k: v for k, v in health.items() if k[2] is None}
    release = {"api-1": "local-api-1", "api-2": "local-api-2"}
    assert {k: v for k, v in endpoints.items() if k[0] != "nginx"} == {
        (name, path, None): ("pass", f"HTTP 200, release {release[name]}")
        if path != "/metrics"
        else ("pass", "HTTP 200")
        for name in release
        for path in ("/health", "/health/ready", "/health/comprehensive", "/metrics")
    }
    (balancer,) = [v for k, v in endpoints.items() if k[0] == "nginx"]
    assert re.fullmatch(r"HTTP 200, release local-api-[12]", balancer[1]) and balancer[0] == "pass"
    assert {v[0] for v in health.values()} == {"pass"}
    # The restarted instances are recorded, alive and serving.
    state = load(state_dir)
    assert state is not None
    for name in release:
        fresh = state.member(name)
        assert fresh is not None and psutil.pid_exists(fresh.pid)
        assert httpx.get(f"{fresh.url}/health/ready", timeout=5).status_code == 200


def test_loadtest_report_of_a_real_run_passes(stack: tuple[Path, Path], tmp_path: Path) -> None:
    _, state_dir = stack
    state = load(state_dir)
    assert state is not None
    report = tmp_path / "report"
    # SLOs a 5-second run has the samples to judge (the plan's p99 needs 500 requests, so
    # a run this short is inconclusive against it).
    slo = tmp_path / "slo.yaml"
    slo.write_text("version: 1\nglobal: {p50_ms: 1000, error_rate: 0.01}\n")
    # The installed command in a child process: Locust monkey-patches the process it runs in.
    run = subprocess.run(
        [
            str(SCALECTL), "loadtest", "browse", "-t", "5s", "-u", "5", "--processes", "1",
            "--slo", str(slo), "-H", state.urls["app"], "--report-dir", str(report),
        ],
        capture_output=True, text=True, timeout=180, check=False,
        # -H names the stack but not its state dir: point the scenario at its keys.
        env={**os.environ, "NO_COLOR": "1", **apikeys.scenario_env(os.environ, state_dir)},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    result = check("{kind: loadtest-report}", Context(report_dir=report))
    assert result.status == "pass", result.evidence
    assert result.evidence[0] == f"{report / 'report.json'}: verdict pass, 2 of 2 SLOs pass"
    assert re.fullmatch(
        r"scenario \S+/scenarios/browse\.py, \d+ requests, p95 [\d.]+ ms, error rate 0\.00%",
        result.evidence[1],
    )
    assert re.fullmatch(r"ended \S+, \d+(\.\d)?s ago \(max age 7d\)", result.evidence[2])
    assert len(result.evidence) == 3


def test_prometheus_not_reachable_fails() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = check(f"{{kind: prometheus, url: '{url}'}}", Context())
    assert result.status == "fail"
    assert result.evidence == (f"{url}: ConnectError: [Errno 111] Connection refused",)


def test_prometheus_elsewhere_is_refused() -> None:
    result = check("{kind: prometheus, url: 'http://example.com:9090'}", Context())
    # The reason after "not a loopback address" depends on this machine's DNS.
    (evidence,) = result.evidence
    assert evidence.startswith("http://example.com:9090: example.com is not a loopback address")
    assert evidence.endswith("; checklists only probe this machine")


def test_an_answer_that_is_not_the_prometheus_api_fails_the_item() -> None:
    with serve() as fake:
        fake.text("/-/ready", "Prometheus Server is Ready.\n")
        fake.text("/api/v1/targets?state=active", "<html>login</html>", content_type="text/html")
        html = check(f"{{kind: prometheus, url: '{fake.base}'}}", Context())
        fake.text("/api/v1/targets?state=active", '{"status": "success", "data": []}')
        shapeless = check(f"{{kind: prometheus, url: '{fake.base}'}}", Context())
    targets = f"{fake.base}/api/v1/targets?state=active"
    assert html.status == "fail"
    assert html.evidence == (f"{targets}: not a Prometheus API answer (not JSON: text/html)",)
    assert shapeless.evidence == (
        f"{targets}: not a Prometheus API answer (no status: success and data)",
    )


def test_a_series_no_instance_exposes_fails(stack: tuple[Path, Path], tmp_path: Path) -> None:
    _, state_dir = stack
    rules = tmp_path / "extra.rules.yml"
    rules.write_text(
        "groups:\n  - name: extra\n    rules:\n"
        "      - alert: Made\n        expr: rate(payments_failed_total[5m]) > 0\n"
    )
    result = check(f"{{kind: metrics-exposed, rules: [{rules}]}}", Context(state_dir=state_dir))
    assert result.status == "fail"
    assert result.evidence[0] == "1 series names used by 1 rule file(s): payments_failed_total"
    assert result.evidence[-1] == ("payments_failed_total (used by Made) missing on api-1, api-2")


def test_slo_beyond_target_fails(stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    result = check(
        "{kind: slo-live, window: 0.5s, p95_ms: 0.1, min_requests: 20}",
        Context(state_dir=state_dir),
    )
    assert result.status == "fail"
    assert (
        result.evidence[0]
        .split(" requests")[1]
        .startswith(" on 2 instance(s) since the instances started")
    )
    assert result.evidence[-1].startswith("p95 ≈ ") and "exceeds 0.1 ms" in result.evidence[-1]


def test_too_little_traffic_fails(stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    result = check(
        "{kind: slo-live, window: 0.5s, min_requests: 100000}", Context(state_dir=state_dir)
    )
    assert result.status == "fail"
    assert result.evidence[-1].startswith("too little traffic to judge: ")


def test_backup_of_a_missing_database_fails(stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    result = check("{kind: backup-restore, database: nope}", Context(state_dir=state_dir))
    assert result.status == "fail"
    assert result.evidence[0].startswith("pg_dump (PostgreSQL) ")
    assert result.evidence[1].startswith("cannot connect to nope: ")
    assert 'database "nope" does not exist' in result.evidence[1]


def test_a_restore_that_fails_fails_the_item(stack: tuple[Path, Path]) -> None:
    import psycopg

    _, state_dir = stack
    state = load(state_dir)
    assert state is not None
    database = credentials.authenticated_url(state_dir, state.urls, "database")
    # A constraint that holds in the live database and not in any other: pg_dump writes it
    # with the table, so pg_restore's COPY into the scratch database fails for real.
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("CREATE TABLE restore_trap (id int CHECK (current_database() = 'refapp'))")
        conn.execute("INSERT INTO restore_trap VALUES (1)")
    try:
        result = check("{kind: backup-restore}", Context(state_dir=state_dir))
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("DROP TABLE restore_trap")
    assert result.status == "fail"
    assert result.evidence[0].startswith("pg_dump (PostgreSQL) ")
    assert re.fullmatch(
        r"pg_dump refapp: 7 tables, \d+ rows, \d+ KiB in [\d.]+s", result.evidence[1]
    )
    assert result.evidence[2:] == (
        "pg_restore exited 1",
        'pg_restore: error: COPY failed for table "restore_trap": ERROR:  new row for '
        'relation "restore_trap" violates check constraint "restore_trap_check"',
        "DETAIL:  Failing row contains (1).",
        'CONTEXT:  COPY restore_trap, line 1: "1"',
    )
    # The scratch database was dropped all the same.
    admin = database.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'scalectl_restore_%'"
        ).fetchall()
    assert left == []


def test_an_instance_that_does_not_drain_fails_graceful_shutdown(
    stack: tuple[Path, Path],
) -> None:
    _, state_dir = stack
    # api-2 started with no time to drain: SIGTERM cuts off the requests in flight.
    restart_member(state_dir, "api-2", overrides={"GRACEFUL_TIMEOUT": "0"})
    result = check(
        "{kind: graceful-shutdown, member: api-2, path: '/api/debug/sleep?ms=3000', rps: 4}",
        Context(state_dir=state_dir),
    )
    assert result.status == "fail", result.evidence
    started = re.fullmatch(
        r"(\d+) requests started before SIGTERM \((\d+) in flight when it was sent\)",
        result.evidence[1],
    )
    assert started and int(started.group(2)) >= 1
    cut_off = [e for e in result.evidence if e.startswith("  broken ")]
    assert result.evidence[5] == f"failed requests: {len(cut_off)}"
    assert len(cut_off) >= int(started.group(2))
    for line in cut_off:
        assert re.fullmatch(
            r"  broken RemoteProtocolError: Server disconnected without sending a response\. "
            r"\(-\d+\.\d\ds from SIGTERM\)",
            line,
        ), line
    # The verifier restarted it as `stack up` does: draining again, and healthy.
    assert re.fullmatch(r"restarted api-2 as pid \d+, healthy after [\d.]+s", result.evidence[6])
    again = check(
        "{kind: graceful-shutdown, member: api-2, path: '/api/debug/sleep?ms=1000', rps: 4}",
        Context(state_dir=state_dir),
    )
    assert again.status == "pass", again.evidence
    assert "failed requests: 0" in again.evidence


def test_no_stack_fails_the_stack_items(tmp_path: Path) -> None:
    for kind in ("backup-restore", "graceful-shutdown", "metrics-exposed", "slo-live"):
        result = check(f"{{kind: {kind}}}", Context(state_dir=tmp_path))
        assert result.evidence == (
            f"no stack is running in {tmp_path} (start one: scalectl stack up)",
        ), kind
    health = check("{kind: health}", Context(state_dir=tmp_path))
    assert health.evidence == (f"{tmp_path}: no stack is running here (run `scalectl stack up`)",)
    # Without --plan and without a stack there is no plan to check: the bundled example
    # would pass for a plan that is not the user's.
    for kind in ("plan-check", "alert-rules", "hpa", "rollout-strategy"):
        result = check(f"{{kind: {kind}}}", Context(state_dir=tmp_path))
        assert result.evidence == (
            f"no plan to check: give --plan PLAN (no stack is running in {tmp_path} to take "
            "its plan from)",
        ), kind


def test_a_proxy_in_the_environment_is_not_used(
    stack: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loopback traffic must never go through an HTTP_PROXY meant for the internet; this
    # one is a closed port, so any request sent through it would fail.
    _, state_dir = stack
    closed = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, closed)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    ctx = Context(state_dir=state_dir)
    for verify in (
        "{kind: health}",
        "{kind: prometheus}",
        "{kind: metrics-exposed}",
        "{kind: slo-live, window: 0.5s, min_requests: 20}",
        "{kind: graceful-shutdown, member: api-1, warmup: 0.5s}",
    ):
        result = check(verify, ctx)
        assert result.status == "pass", (verify, result.evidence)


# --- breaking the stack: last, and restored -------------------------------------------


def test_a_saved_pass_does_not_hide_a_frozen_instance(
    cli: Cli, stack: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, state_dir = stack
    monkeypatch.chdir(tmp_path)
    (tmp_path / "RB.md").write_text("# Rollback\nkubectl rollout undo deployment/api\n")
    path = checklist_file(
        tmp_path,
        """
        - id: health
          title: Health checks pass
          verify: {kind: health, timeout: 2}
        - id: rollback
          title: Rollback documented
          verify: {kind: rollback-doc, path: RB.md, min_lines: 1}
        """,
    )
    args = ("checklist", path, "--state-dir", state_dir, "--progress-dir", tmp_path, "--json")
    first = cli(*args)
    assert first.code == 0, first.stdout
    assert statuses(first) == {"health": ("pass", False), "rollback": ("pass", False)}

    api1 = member(state_dir, "api-1")
    os.killpg(api1.pid, signal.SIGSTOP)  # the instance and its workers hang
    try:
        again = cli(*args)
    finally:
        os.killpg(api1.pid, signal.SIGCONT)
    # The live check ran again and found it; the document's pass was reused.
    assert again.code == 1, again.stdout
    assert statuses(again) == {"health": ("fail", False), "rollback": ("pass", True)}
    found = rows(items(again)["health"]["evidence"])
    assert {k[1]: v for k, v in found.items() if k[0] == "api-1" and k[2] is None} == {
        path: ("fail", "no response within 2s")
        for path in ("/health", "/health/ready", "/health/comprehensive", "/metrics")
    }
    healthy_again(state_dir)


def test_an_explicit_valid_for_is_reused_until_the_stack_changes(
    cli: Cli, stack: tuple[Path, Path], tmp_path: Path
) -> None:
    _, state_dir = stack
    path = checklist_file(
        tmp_path,
        """
        - id: health
          title: Health checks pass
          verify: {kind: health}
          valid_for: 1h
        """,
    )
    args = ("checklist", path, "--state-dir", state_dir, "--progress-dir", tmp_path, "--json")
    assert statuses(cli(*args)) == {"health": ("pass", False)}
    assert statuses(cli(*args)) == {"health": ("pass", True)}
    restart_member(state_dir, "api-2")  # a new process: the saved pass was about another
    assert statuses(cli(*args)) == {"health": ("pass", False)}


def test_a_target_down_fails_the_prometheus_item(stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    state = load(state_dir)
    assert state is not None
    api1 = state.member("api-1")
    assert api1 is not None
    scrape_url = f"{api1.url}/metrics"
    targets = f"{state.urls['prometheus']}/api/v1/targets?state=active"

    def seen_down() -> bool:
        # api-1 down, and every other target up again after the restarts of earlier tests.
        active = httpx.get(targets, timeout=5).json()["data"]["activeTargets"]
        health = {t["scrapeUrl"]: t["health"] for t in active}
        return health.pop(scrape_url, None) == "down" and set(health.values()) == {"up"}

    os.killpg(api1.pid, signal.SIGSTOP)
    try:
        # Prometheus scrapes every 15s with a 10s timeout: down within 25s, bounded.
        assert wait_for(seen_down, timeout=40, interval=1)
        result = check("{kind: prometheus, wait: 1}", Context(state_dir=state_dir))
    finally:
        os.killpg(api1.pid, signal.SIGCONT)
    assert result.status == "fail"
    assert result.evidence[1] == "targets: 2 of 3 up (api 2, jobs 1)"
    assert result.evidence[-1].startswith(f"api {scrape_url}: down (")
    healthy_again(state_dir)


def test_a_stopped_redis_fails_strict_health(stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    redis = member(state_dir, "redis")
    os.kill(redis.pid, signal.SIGKILL)
    redis.wait(5)
    result = check("{kind: health, strict: true}", Context(state_dir=state_dir))
    assert result.status == "fail", result.evidence
    found = rows(result.evidence)
    degraded = {k: v for k, v in found.items() if v[0] != "pass" and k[2] not in HOST}
    # The cache is optional: readiness and the comprehensive report degrade to warn (still
    # 200), each showing the Redis component; strict makes that a failure. Nothing fails.
    warned = {
        (target, path, component)
        for target, paths in (
            ("api-1", ("/health/ready", "/health/comprehensive")),
            ("api-2", ("/health/ready", "/health/comprehensive")),
            ("nginx", ("/health/ready",)),
        )
        for path in paths
        for component in (None, "redis:responseTime")
    }
    assert set(degraded) == warned, sorted(degraded)
    assert {v[0] for v in degraded.values()} == {"warn"}
    for key, (_, detail) in degraded.items():
        if key[2] is None:
            assert re.fullmatch(r"HTTP 200, body status warn, release local-api-[12]", detail)

    restart_member(state_dir, "redis")
    # The app reconnects on its own once its breaker lets a probe through (bounded wait).
    assert wait_for(
        lambda: (
            check("{kind: health, strict: true}", Context(state_dir=state_dir)).status == "pass"
        ),
        timeout=45,
        interval=1,
    )


def test_a_killed_instance_fails_health_shutdown_and_metrics(stack: tuple[Path, Path]) -> None:
    _, state_dir = stack
    victim = member(state_dir, "api-1")
    group = [victim, *victim.children(recursive=True)]
    os.killpg(victim.pid, signal.SIGKILL)
    # Every process of the group, not only gunicorn's master: a worker still dying holds the
    # listening socket, and a probe then connects and reads nothing (ReadError).
    _, alive = psutil.wait_procs(group, timeout=5)
    assert not alive, alive
    ctx = Context(state_dir=state_dir)

    health = check("{kind: health}", ctx)
    assert health.status == "fail"
    found = rows(health.evidence)
    assert {k[1]: v for k, v in found.items() if k[0] == "api-1"} == {
        path: ("fail", "connection refused")
        for path in ("/health", "/health/ready", "/health/comprehensive", "/metrics")
    }
    shutdown = check("{kind: graceful-shutdown, member: api-1}", ctx)
    assert shutdown.evidence == (
        f"api-1 is not running (pid {victim.pid} is gone): nothing to shut down",
    )
    metrics = check("{kind: metrics-exposed}", ctx)
    assert metrics.status == "fail"
    (refused,) = [line for line in metrics.evidence if line.startswith("api-1: ")]
    assert re.fullmatch(
        r"api-1: http://127\.0\.0\.1:\d+/metrics: ConnectError: \[Errno 111\] Connection refused",
        refused,
    )

    fresh = restart_member(state_dir, "api-1")
    assert fresh.pid != victim.pid
    healthy_again(state_dir, timeout=30)
