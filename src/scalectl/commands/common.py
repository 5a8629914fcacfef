"""What every command needs from the invocation: its Output (STYLE.md §6)."""

from __future__ import annotations

import typer

from scalectl.output import Output


def output_of(ctx: typer.Context, json_mode: bool) -> Output:
    """The Output `cli.run` put in the context (a fresh one when called another way)."""
    root = ctx.find_root().obj
    base = root if isinstance(root, Output) else Output()
    return Output(json_mode=json_mode, environ=base.environ, stdout=base.stdout, stderr=base.stderr)
