"""The CLI contract: version, help, exit codes, the error handler, fast start-up."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

from scalectl import __version__
from scalectl.cli import app
from scalectl.errors import ExitCode
from tests.conftest import ROOT, Result

Cli = Callable[..., Result]


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert (result.code, result.stdout) == (0, f"scalectl {__version__}\n")


def test_no_arguments_shows_help(cli: Cli) -> None:
    result = cli()
    assert "Usage: scalectl" in result.stdout + result.stderr


def test_exit_codes_are_the_documented_ones() -> None:
    assert {c.name: c.value for c in ExitCode} == {
        "OK": 0,
        "CHECK_FAILED": 1,
        "BAD_INPUT": 2,
        "INTERNAL": 3,
        "INCONCLUSIVE": 4,
        "REGRESSED": 5,
        "INTERRUPTED": 130,
    }
    readme = (ROOT / "README.md").read_text()
    for code in ExitCode:
        assert f"| {code.value} |" in readme, f"exit code {code.value} is not in the README"


def _leaf_commands() -> list[list[str]]:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    found: list[list[str]] = []

    def walk(group: TyperGroup, prefix: list[str]) -> None:
        ctx = typer.Context(group)
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            if isinstance(cmd, TyperGroup):
                walk(cmd, [*prefix, name])
            elif cmd is not None:
                found.append([*prefix, name])
                assert cmd.help, f"{' '.join([*prefix, name])} has no help text"
                assert "Example: scalectl " in cmd.help, f"{name} has no example"

    walk(root, [])
    return found


def test_every_command_has_help_and_an_example() -> None:
    assert ["plan", "render"] in _leaf_commands()


def test_docs_are_generated_from_the_current_code() -> None:
    generate = runpy.run_path(str(ROOT / "docs" / "generate.py"))
    for path, text in generate["outputs"]().items():
        assert path.read_text() == text, f"{path} is stale: run python docs/generate.py"


def test_help_does_not_import_heavy_modules() -> None:
    # `scalectl --help` must stay fast: jinja2, pandas, numpy, locust, gevent load inside
    # commands.
    code = (
        "import sys, scalectl.cli as c; c.run(['--help']);"
        "print('HEAVY=' + ','.join(m for m in "
        "('jinja2','pandas','numpy','locust','gevent','pydantic') "
        "if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY=", proc.stdout


def test_internal_error_prints_a_short_message_and_a_log(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Provoke a genuine bug path: a plan directory the loader cannot treat as text.
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("scalectl.plan.prepare", broken)
    result = cli("plan", "x.yaml", env={"XDG_STATE_HOME": str(tmp_path)})
    assert result.code == ExitCode.INTERNAL
    first, second = result.stderr.strip().splitlines()
    assert first == "internal error: RuntimeError: boom"
    log = Path(second.split("the traceback is in ")[1].split(";")[0])
    assert log.parent == tmp_path / "scalectl"
    assert "Traceback (most recent call last)" in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600  # private: it may show paths and arguments


def test_interrupt_exits_130(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("scalectl.plan.prepare", interrupted)
    result = cli("plan", "x.yaml")
    assert result.code == ExitCode.INTERRUPTED
    assert result.stderr.strip() == "interrupted"


def test_installed_entry_point_runs_as_a_subprocess(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "scalectl"
    proc = subprocess.run(
        [str(exe), "plan", str(ROOT / "examples" / "small.yaml"), "-o", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
