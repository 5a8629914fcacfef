"""The local stack's API key pool as the other commands read it (no servers: `stack up`
minting it is tested against the real stack in tests/scenarios)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalectl.loadtest.settings import stack_keys_env
from scalectl.stack import apikeys
from scalectl.stack.state import StackState

POOL = [
    {"key": "rk_free", "user": 1000, "tier": "free"},
    {"key": "rk_premium", "user": 1000, "tier": "premium"},
]


def with_pool(state_dir: Path) -> Path:
    path = apikeys.keys_file(state_dir)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(POOL))
    return path


def test_auth_headers_take_a_key_of_the_tier(tmp_path: Path) -> None:
    assert apikeys.auth_headers(tmp_path) == {}  # no pool: a stack from before keys
    with_pool(tmp_path)
    assert apikeys.auth_headers(tmp_path) == {"Authorization": "Bearer rk_premium"}
    assert apikeys.auth_headers(tmp_path, "free") == {"Authorization": "Bearer rk_free"}
    assert apikeys.auth_headers(tmp_path, "basic") == {}


def test_scenario_env_names_the_pool_unless_keys_were_chosen(tmp_path: Path) -> None:
    assert apikeys.scenario_env({}, tmp_path) == {}
    path = with_pool(tmp_path)
    assert apikeys.scenario_env({}, tmp_path) == {"SCALECTL_API_KEYS_FILE": str(path.resolve())}
    assert apikeys.scenario_env({"SCALECTL_API_KEY": "rk_mine"}, tmp_path) == {}
    assert apikeys.scenario_env({"SCALECTL_API_KEYS_FILE": "/elsewhere"}, tmp_path) == {}


def test_loadtest_passes_the_pool_only_to_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    state_dir = Path(".scalectl/stack")
    StackState(
        "plan.yaml", "local", str(state_dir), 0.0, urls={"app": "http://127.0.0.1:8080"}
    ).save()
    assert stack_keys_env({}, "http://127.0.0.1:8080") == {}  # no pool yet
    path = with_pool(state_dir)
    expected = {"SCALECTL_API_KEYS_FILE": str(path.resolve())}
    assert stack_keys_env({}, "http://127.0.0.1:8080/") == expected
    assert stack_keys_env({}, "http://127.0.0.1:9999") == {}  # not the stack: no keys
    assert stack_keys_env({}, "https://api.example.com") == {}
