"""The pipeline docs/ci.md gives a user, run from a directory outside this repository with
scalectl as a user installs it: the wheel built from the sdist in a fresh venv
(`installed_scalectl`), and the wheel through pipx as action.yml installs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from scalectl.stack.process import free_port
from tests.conftest import ROOT
from tests.helpers.action import install_tools_input
from tests.helpers.stack import free_block
from tests.packaging import EXTRAS, Installed, uv

# A generous gate on purpose: this test proves the steps work outside the checkout, not the
# speed of a 2-core machine shared with other tests (tests/loadtest gate on real figures).
SLO = """\
version: 1
warmup: 5s
global: {p95_ms: 2000, error_rate: 0.05}
"""


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A user's checkout: a fresh directory outside this repository and pytest's 0700
    basetemp (PostgreSQL's unprivileged account needs o+x on its data dir's parents)."""
    root = Path(tempfile.mkdtemp(prefix="scalectl-user-repo-"))
    root.chmod(0o755)
    assert not root.resolve().is_relative_to(ROOT)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def ok(proc: subprocess.CompletedProcess[str], step: str) -> None:
    assert proc.returncode == 0, f"{step} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"


def stack_plan(installed: Installed, directory: Path) -> Path:
    """The reference app's plan as the installed package ships it, on free loopback ports
    (other tests' stacks may hold the default ones)."""
    where = subprocess.run(
        [
            str(installed.python),
            "-c",
            "from scalectl.stack.run import default_plan as d; print(d())",
        ],
        env=installed.env(),
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert not Path(where).resolve().is_relative_to(ROOT), where
    text = Path(where).read_text()
    text = text.replace("listen: 127.0.0.1:8080", f"listen: 127.0.0.1:{free_port()}")
    text = text.replace("base_port: 18000", f"base_port: {free_block(4)}")
    path = directory / "stack-plan.yaml"
    path.write_text(text)
    return path


@pytest.mark.slow
@pytest.mark.stack
def test_documented_pipeline_runs_outside_the_repository(
    installed_scalectl: Installed, workdir: Path
) -> None:
    s = installed_scalectl
    where = subprocess.run(
        [str(s.python), "-c", "import scalectl; print(scalectl.__file__)"],
        env=s.env(),
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(s.venv), where  # the installed package, not src/

    doctor = s.run("doctor", "--json", cwd=workdir, timeout=120)
    ok(doctor, "doctor")
    assert json.loads(doctor.stdout)["missing_required"] == []

    ok(s.run("plan", "init", "capacity.yaml", cwd=workdir), "plan init")
    # CI=true, as on GitHub: a validator that is missing fails instead of being skipped.
    check = s.run(
        "plan", "capacity.yaml", "--out", "rendered", "--check", "--json", cwd=workdir, CI="true"
    )
    ok(check, "plan --check")
    [result] = json.loads(check.stdout)["results"]
    statuses = {c["tool"]: c["status"] for c in result["checks"]}
    assert set(statuses.values()) == {"ok"}, statuses
    assert {"nginx -t", "gixy", "promtool test rules", "amtool check-config"} <= set(statuses)

    (workdir / "slo.yaml").write_text(SLO)
    plan = stack_plan(s, workdir)
    up: subprocess.CompletedProcess[str] | None = None
    try:
        up = s.run("stack", "up", "--plan", plan, "--timeout", "180", "--json", cwd=workdir)
        ok(up, "stack up")
        state: dict[str, Any] = json.loads(up.stdout)
        assert Path(state["state_dir"]) == workdir / ".scalectl" / "stack"  # the user's dir
        ok(s.run("health", "--wait", "--timeout", "120s", cwd=workdir, timeout=180), "health")
        app = state["urls"]["app"]
        load = s.run(
            "loadtest", "mix", "-H", app, "-u", "10", "-r", "10", "-t", "20s",
            "--processes", "1", "--slo", "slo.yaml", "--report-dir", "loadtest-report",
            cwd=workdir, timeout=240,
        )  # fmt: skip
        ok(load, "loadtest")
        report = json.loads((workdir / "loadtest-report" / "report.json").read_text())
        assert report["verdict"] == "pass"
        assert report["meta"]["warmup_s"] == 5  # the SLO file's warm-up, not gated
        for name in ("junit.xml", "summary.md", "report.html", "timeseries.csv"):
            assert (workdir / "loadtest-report" / name).is_file(), name
    finally:
        down = s.run("stack", "down", cwd=workdir, timeout=180)
    ok(down, "stack down")
    assert up is not None
    pids = [m["pid"] for m in json.loads(up.stdout)["members"]]
    assert not [p for p in pids if psutil.pid_exists(p) and _alive(p)], "stack down left some"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _action_step(name: str) -> str:
    spec = yaml.safe_load((ROOT / "action.yml").read_text())
    [step] = [s for s in spec["runs"]["steps"] if s.get("id") == name or s.get("name") == name]
    script = step["run"]
    assert isinstance(script, str)
    return script


@pytest.mark.slow
def test_action_installs_the_wheel_with_pipx(installed_scalectl: Installed, workdir: Path) -> None:
    """action.yml's own install and doctor scripts, run here as GitHub would run them, with
    the built wheel as its `package` input; dependencies held to uv.lock by constraints."""
    constraints = installed_scalectl.venv.parent / "constraints.txt"
    assert constraints.is_file()
    # The interpreter setup-python would give: a plain venv with pip.
    python_home = workdir / "python"
    subprocess.run([sys.executable, "-m", "venv", str(python_home)], check=True, timeout=300)
    pipx_home, github = workdir / "pipx", workdir / "github"
    github.mkdir()
    # The runner's own settings (certificates, proxies, the index) stay; the checkout's venv
    # and import paths do not.
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CI", "PATH", "HOME")
    }
    env = {
        **inherited,
        "PATH": f"{Path(uv()).parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(installed_scalectl.home),
        "NO_COLOR": "1",
        "PYTHON": str(python_home / "bin" / "python"),
        "SCALECTL_PACKAGE": str(installed_scalectl.wheel),
        "SCALECTL_EXTRAS": EXTRAS,
        "SCALECTL_VERSION": "",
        "PIPX_HOME": str(pipx_home),
        "PIPX_BIN_DIR": str(pipx_home / "bin"),
        "PIP_CONSTRAINT": str(constraints),  # pip (pipx itself; pipx's pip backend)
        "UV_CONSTRAINT": str(constraints),  # pipx's uv backend
        "UV_PYTHON_DOWNLOADS": "never",
        "GITHUB_PATH": str(github / "path"),
        "GITHUB_OUTPUT": str(github / "output"),
    }
    install = subprocess.run(
        ["bash", "-c", _action_step("install")],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    logs = "".join(f.read_text()[-3000:] for f in sorted((pipx_home / "logs").glob("*errors.log")))
    assert install.returncode == 0, f"install step: {install.stdout}{install.stderr}{logs}"
    outputs = dict(
        line.split("=", 1) for line in (github / "output").read_text().splitlines() if line
    )
    exe = Path(outputs["path"])
    assert exe == pipx_home / "bin" / "scalectl" and exe.exists()
    assert (github / "path").read_text().strip() == str(pipx_home / "bin")
    version = subprocess.run(
        [str(installed_scalectl.python), "-c", "import scalectl; print(scalectl.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert outputs["version"] == version

    doctor = subprocess.run(
        ["bash", "-c", _action_step("Check (and install) the tools scalectl uses")],
        env={
            **env,
            "SCALECTL": str(exe),
            "INSTALL_TOOLS": install_tools_input(exe, env),
            "OPTIONAL_TOOLS": "false",
        },
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    ok(doctor, "the action's doctor step")
    report = subprocess.run(
        [str(exe), "doctor", "--json"], env=env, cwd=workdir, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    found = {t["name"]: t for t in json.loads(report.stdout)["tools"]}
    # Everything Python comes from the pipx venv, not from this checkout or its .venv.
    for name in ("gunicorn", "locust", "kubernetes-validate", "check-jsonschema", "gixy"):
        assert Path(found[name]["path"]).is_relative_to(pipx_home), found[name]
    assert found["redis"]["path"].startswith(str(pipx_home)) or found["redis"]["source"] == "PATH"
