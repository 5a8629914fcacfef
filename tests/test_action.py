"""action.yml, the composite GitHub Action, checked statically (it only runs on GitHub):
the vendored github-action schema, shells, declared inputs, safe scripts that parse; its
doctor step is also run here for real."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.helpers.action import install_tools_input

ACTION = ROOT / "action.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def action() -> dict[str, Any]:
    loaded = yaml.safe_load(ACTION.read_text())
    assert isinstance(loaded, dict)
    return loaded


def steps() -> list[dict[str, Any]]:
    found = action()["runs"]["steps"]
    assert isinstance(found, list)
    return found


def step(step_id: str) -> dict[str, Any]:
    [found] = [s for s in steps() if s.get("id") == step_id or s.get("name") == step_id]
    return found


def test_matches_the_vendored_github_action_schema() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    proc = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-actions", str(ACTION)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_is_a_composite_action_whose_run_steps_name_their_shell() -> None:
    spec = action()
    assert spec["runs"]["using"] == "composite"
    for s in steps():
        assert ("run" in s) != ("uses" in s), s
        if "run" in s:
            assert s.get("shell") == "bash", s["name"]
            assert s["run"].startswith("set -euo pipefail\n"), s["name"]


def test_every_expression_refers_to_something_declared() -> None:
    spec = action()
    inputs = set(spec["inputs"])
    seen_ids: set[str] = set()
    used: set[str] = set()
    for s in steps():
        text = yaml.safe_dump({k: v for k, v in s.items() if k != "id"})
        for expr in EXPRESSION.findall(text):
            kind, name, *_ = expr.split(".")
            if kind == "inputs":
                assert name in inputs, f"undeclared input {name}"
                used.add(name)
            else:
                assert kind == "steps" and name in seen_ids, f"{expr}: no earlier step {name}"
        if "id" in s:
            seen_ids.add(s["id"])
    assert used == inputs, f"declared but unused: {inputs - used}"
    for output in spec["outputs"].values():
        [expr] = EXPRESSION.findall(output["value"])
        assert expr.split(".")[1] in seen_ids
    for name, declared in spec["inputs"].items():
        assert declared["description"] and "default" in declared, name


def test_inputs_reach_scripts_only_through_the_environment() -> None:
    # An expression pasted into a script is a script-injection hole; env is not.
    for s in steps():
        if "run" in s:
            assert not EXPRESSION.search(s["run"]), s["name"]


@pytest.mark.parametrize("name", ["install", "Check (and install) the tools scalectl uses"])
def test_scripts_parse_in_bash(name: str) -> None:
    proc = subprocess.run(
        ["bash", "-n"], input=step(name)["run"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_installs_the_extras_the_docs_give() -> None:
    assert action()["inputs"]["extras"]["default"] == "loadtest,validators,stack"
    assert "pipx install --force" in step("install")["run"]


def test_doctor_step_runs_for_real_with_this_scalectl(tmp_path: Path) -> None:
    # As the action would on a runner with every tool: report, nothing to install.
    scalectl = Path(sys.executable).parent / "scalectl"
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "NO_COLOR": "1"}
    env = {
        **base,
        "SCALECTL": str(scalectl),
        "INSTALL_TOOLS": install_tools_input(scalectl, base),
        "OPTIONAL_TOOLS": "false",
    }
    proc = subprocess.run(
        ["bash", "-c", step("Check (and install) the tools scalectl uses")["run"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("every ")
