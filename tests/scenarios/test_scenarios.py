"""The Locust scenarios against the real local stack (plus their pure helpers).

Locust is only ever run in a child process: importing it here would monkey-patch this
interpreter with gevent. `scenarios/common.py` has no Locust import, so it is loaded
directly for the unit tests of the sampler, the text generator and the shape schedules.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import random
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from scalectl.stack import apikeys, run
from scalectl.stack.state import StackState
from tests.conftest import reachable_dir
from tests.helpers.stack import local_plan

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
RUN_TIMEOUT = 40  # seconds for one 6-second Locust run, start-up included

# Short waits so a 6-second run with 8 users hits every request name several times.
FAST_ENV = {
    "SCALECTL_WAIT_MIN": "0.05",
    "SCALECTL_WAIT_MAX": "0.2",
    "SCALECTL_JOB_POLL_SECONDS": "0.2",
    "SCALECTL_JOB_MAX_POLLS": "100",
    "SCALECTL_BROWSE_POOL": "30",
    "SCALECTL_SEED": "7",
}

BROWSE = {
    "GET /api/submissions/{id}",
    "GET /api/submissions/{id} [no-cache]",
    "GET /api/users/{id}/submissions",
    "GET /api/stats",
}
SUBMIT = {"POST /api/submissions", "PATCH /api/submissions/{id}", "DELETE /api/submissions/{id}"}
PIPELINE = {"POST /api/submissions", "GET /api/jobs/{id}", "JOB analyse end-to-end"}


def _load_common() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "scalectl_scenarios_common", SCENARIOS / "common.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _load_common()


# --- pure helpers -----------------------------------------------------------------------


def test_zipf_is_skewed_bounded_and_seeded() -> None:
    first = common.Zipf(50, 1.1, random.Random(3))
    draws = [first.sample() for _ in range(20)]
    sampler = common.Zipf(50, 1.1, random.Random(3))
    counts = Counter(sampler.sample() for _ in range(5000))
    assert set(counts) <= set(range(50))
    assert counts[0] > counts[1] > counts[10] and counts[0] > 5000 * 0.15
    again = common.Zipf(50, 1.1, random.Random(3))
    assert [again.sample() for _ in range(20)] == draws


def test_cv_text_varies_and_fits_the_api() -> None:
    rng = random.Random(1)
    lengths = [len(common.cv_text(rng)[1]) for _ in range(200)]
    assert min(lengths) >= 200 and max(lengths) <= 41_000
    assert max(lengths) > 3 * min(lengths)
    title, content = common.cv_text(rng, 500)
    assert 0 < len(title) <= 200 and "Experience" in content and "\x00" not in content


@pytest.fixture
def fresh_common(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """common.py loaded anew (it reads the keys once per process), with no keys set."""
    for name in ("SCALECTL_API_KEYS_FILE", "SCALECTL_API_KEY", "SCALECTL_API_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SCALECTL_API_TIER", raising=False)
    return _load_common()


def test_keys_come_round_robin_per_tier(
    fresh_common: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keys = [
        {"key": "rk_p1", "user": 7, "tier": "premium"},
        {"key": "rk_f1", "user": 7, "tier": "free"},
        {"key": "rk_p2", "user": 7, "tier": "premium"},
    ]
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(keys))
    monkeypatch.setenv("SCALECTL_API_KEYS_FILE", str(path))
    taken = [fresh_common.take_key().key for _ in range(3)]
    assert taken == ["rk_p1", "rk_p2", "rk_p1"]
    assert fresh_common.take_key("free").key == "rk_f1"
    headers = fresh_common.client_headers(fresh_common.take_key("free"))
    assert headers["Authorization"] == "Bearer rk_f1"
    assert not any(h.lower().startswith("x-api") for h in headers)
    with pytest.raises(ValueError, match="no API key of tier basic"):
        fresh_common.take_key("basic")


def test_no_keys_is_a_clear_error(fresh_common: ModuleType) -> None:
    with pytest.raises(ValueError, match="SCALECTL_API_KEYS_FILE"):
        fresh_common.client_headers()


def test_single_key_needs_its_user(
    fresh_common: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALECTL_API_KEY", "rk_single")
    with pytest.raises(ValueError, match="SCALECTL_API_USER"):
        fresh_common.take_key()
    monkeypatch.setenv("SCALECTL_API_USER", "12")
    monkeypatch.setenv("SCALECTL_API_TIER", "basic")
    again = _load_common()
    assert again.take_key("basic") == again.ApiKey("rk_single", 12, "basic")


@pytest.mark.parametrize(
    "content",
    ["{}", '[{"key": "rk_x", "user": "7", "tier": "premium"}]', '[{"key": 1}]', "not json"],
)
def test_bad_keys_file_is_refused(
    fresh_common: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    monkeypatch.setenv("SCALECTL_API_KEYS_FILE", str(path))
    with pytest.raises(ValueError, match=str(path)):
        fresh_common.take_key()


def test_shape_schedules_end() -> None:
    assert common.step_tick(0, 10, 5, 2, 5) == (2, 5)
    assert common.step_tick(9.9, 10, 5, 2, 5) == (10, 5)
    assert common.step_tick(10, 10, 5, 2, 5) is None
    assert common.spike_tick(0, 2, 20, 3, 2, 8, 5) == (2, 5)
    assert common.spike_tick(3.5, 2, 20, 3, 2, 8, 5) == (20, 20.0)
    assert common.spike_tick(6, 2, 20, 3, 2, 8, 5) == (2, 5)
    assert common.spike_tick(8, 2, 20, 3, 2, 8, 5) is None
    assert common.soak_tick(0, 30, 10, 100) == (30, 3.0)
    assert common.soak_tick(100, 30, 10, 100) is None


# --- against the stack ------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[StackState]:
    before = os.environ.get("SCALECTL_API_KEYS_FILE")
    with reachable_dir("scenarios-stack") as directory:
        state_dir = directory / "state"
        plan = local_plan(directory)
        try:
            state = run.up(plan, "local", state_dir, timeout=120).state
            # Every Locust child of this module (and `scalectl loadtest`) takes its keys here.
            os.environ["SCALECTL_API_KEYS_FILE"] = str(apikeys.keys_file(state_dir))
            yield state
        finally:
            if before is None:
                os.environ.pop("SCALECTL_API_KEYS_FILE", None)
            else:
                os.environ["SCALECTL_API_KEYS_FILE"] = before
            run.down(state_dir)


@pytest.mark.stack
def test_stack_minted_a_private_key_pool(stack: StackState) -> None:
    path = apikeys.keys_file(Path(stack.state_dir))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    keys = json.loads(path.read_text())
    assert Counter(k["tier"] for k in keys) == {t: apikeys.POOL_PER_TIER for t in apikeys.TIERS}
    assert {k["user"] for k in keys} == {apikeys.POOL_USER}
    app = stack.urls["app"]
    assert httpx.get(app + "/api/stats", timeout=5).status_code == 401
    headers = apikeys.auth_headers(Path(stack.state_dir), "free")
    assert httpx.get(app + "/api/stats", headers=headers, timeout=5).status_code == 200
    # Minting again for this state dir keeps the pool (keys are shown once).
    assert apikeys.mint_pool(Path(stack.state_dir), {}, Path("/nonexistent")) == path
    assert json.loads(path.read_text()) == keys


@pytest.mark.stack
def test_scenario_without_keys_fails_clearly(stack: StackState, tmp_path: Path) -> None:
    args = [sys.executable, "-m", "locust", "-f", str(SCENARIOS / "browse.py"), "--headless"]
    args += ["-u", "1", "-r", "1", "-t", "2s", "-H", stack.urls["app"], "--only-summary"]
    env = {k: v for k, v in os.environ.items() if k != "SCALECTL_API_KEYS_FILE"}
    proc = subprocess.run(
        args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    assert "no API key of tier premium" in proc.stderr


def _locust(
    scenario: str, host: str, workdir: Path, *extra: str, env: dict[str, str] | None = None
) -> dict[str, dict[str, str]]:
    """Run one scenario headless; return run_stats.csv rows keyed "<Type> <Name>"."""
    prefix = workdir / "run"
    args = [sys.executable, "-m", "locust", "-f", str(SCENARIOS / scenario), "--headless"]
    args += [*extra, "-H", host, "--csv", str(prefix), "--only-summary"]
    proc = subprocess.run(
        args,
        cwd=workdir,  # not the repository: sibling imports must not depend on the cwd
        env={**os.environ, **FAST_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    with (workdir / "run_stats.csv").open(newline="") as handle:
        rows = {f"{r['Type']} {r['Name']}": r for r in csv.DictReader(handle) if r["Type"]}
    return rows


def _assert_clean(rows: dict[str, dict[str, str]], expected: set[str]) -> None:
    missing = expected - set(rows)
    assert not missing, f"missing {missing} in {sorted(rows)}"
    for name in expected:
        assert int(rows[name]["Request Count"]) > 0, name
    failures = {k: r["Failure Count"] for k, r in rows.items() if int(r["Failure Count"])}
    assert not failures, failures


SCENARIO_CASES = {
    "browse.py": BROWSE,
    "submit.py": SUBMIT,
    "pipeline.py": PIPELINE,
    "mix.py": BROWSE | SUBMIT | PIPELINE,
}


@pytest.mark.stack
@pytest.mark.parametrize("scenario", sorted(SCENARIO_CASES))
def test_scenario_runs_clean(stack: StackState, scenario: str, tmp_path: Path) -> None:
    rows = _locust(scenario, stack.urls["app"], tmp_path, "-u", "8", "-r", "8", "-t", "6s")
    _assert_clean(rows, SCENARIO_CASES[scenario])


@pytest.mark.stack
def test_step_shape_stops_by_itself(stack: StackState, tmp_path: Path) -> None:
    env = {
        "SCALECTL_SHAPE_USERS": "6",
        "SCALECTL_SHAPE_STEPS": "3",
        "SCALECTL_SHAPE_STEP_SECONDS": "2",
        "SCALECTL_SHAPE_SPAWN_RATE": "6",
    }
    rows = _locust("step.py", stack.urls["app"], tmp_path, env=env)
    assert int(rows["GET /api/submissions/{id}"]["Request Count"]) > 0


@pytest.mark.stack
def test_scalectl_loadtest_gates_the_mix_on_slos(stack: StackState, tmp_path: Path) -> None:
    """End to end: our scenario, our runner, SLO gates, the real stack through nginx.

    The SLOs are ones a 12 s run has the samples for; the plan's full set (per-endpoint
    p95s, p99) needs minutes, and a short run is rightly inconclusive for them.
    """
    import io
    import json

    from scalectl.cli import run

    slo = tmp_path / "slo.yaml"
    slo.write_text(
        "version: 1\n"
        "global: {p95_ms: 300, error_rate: 0.01}\n"
        'endpoints:\n  "POST /api/submissions": {p95_ms: 500, error_rate: 0.01}\n'
    )
    out, err = io.StringIO(), io.StringIO()
    code = run(
        [
            *("loadtest", "mix", "-H", stack.urls["app"], "-u", "30", "-r", "30", "-t", "12s"),
            *("--processes", "2", "--slo", str(slo), "--report-dir", str(tmp_path / "r")),
        ],
        stdout=out,
        stderr=err,
    )
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert code == 0, out.getvalue() + err.getvalue()
    assert report["verdict"] == "pass"
    assert [s["passed"] for s in report["slos"]] == [True] * 4
    assert report["total"]["failures"] == 0
    assert (
        "JOB" not in {e["method"] for e in report["endpoints"]} or report["total"]["max_ms"] < 1000
    )
