"""Regenerate docs/cli.md (from --help) and docs/plan.md (from the schema).

Run: .venv/bin/python docs/generate.py     Tests fail when the committed files drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from scalectl.cli import app
from scalectl.plan.schema import markdown

DOCS = Path(__file__).resolve().parent


def _commands(group: TyperGroup, prefix: list[str]) -> list[list[str]]:
    out = [prefix]
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, TyperGroup):
            out += _commands(cmd, [*prefix, name])
        elif cmd is not None and not cmd.hidden:
            out.append([*prefix, name])
    return out


def cli_reference() -> str:
    runner = CliRunner()
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    parts = [
        "# CLI reference",
        "",
        "Generated from `--help` by `python docs/generate.py`; do not edit by hand.",
        "",
    ]
    for path in _commands(root, []):
        result = runner.invoke(app, [*path, "--help"], terminal_width=100, env={"COLUMNS": "100"})
        title = " ".join(["scalectl", *path])
        parts += [f"## `{title}`", "", "```text", result.output.rstrip(), "```", ""]
    return "\n".join(parts)


def outputs() -> dict[Path, str]:
    return {DOCS / "cli.md": cli_reference(), DOCS / "plan.md": markdown() + "\n"}


if __name__ == "__main__":
    for path, text in outputs().items():
        path.write_text(text)
        print(f"wrote {path}", file=sys.stderr)
