"""What every command needs from the invocation: its Output (STYLE.md §6)."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from scalectl.output import Output


class DefaultCommandGroup(TyperGroup):
    """A group whose first argument, when it is not a subcommand, goes to `default`:
    `scalectl plan PLAN` is `scalectl plan render PLAN`."""

    default = ""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default, *args]
        return super().parse_args(ctx, args)


def default_group(name: str) -> type[DefaultCommandGroup]:
    return type(f"Default{name.title()}Group", (DefaultCommandGroup,), {"default": name})


def output_of(ctx: typer.Context, json_mode: bool) -> Output:
    """The Output `cli.run` put in the context (a fresh one when called another way)."""
    root = ctx.find_root().obj
    base = root if isinstance(root, Output) else Output()
    return Output(json_mode=json_mode, environ=base.environ, stdout=base.stdout, stderr=base.stderr)
