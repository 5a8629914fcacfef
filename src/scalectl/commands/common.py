"""What every command needs from the invocation: its Output."""

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


class DefaultHelpGroup(DefaultCommandGroup):
    """A group with a default command whose `--help` also shows that command's arguments
    and options: `scalectl health --help` is what people type, not `health probe --help`.
    Every command group with a default command uses it."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        super().format_help(ctx, formatter)
        command = self.get_command(ctx, self.default)
        if command is None:
            return
        sub = type(ctx)(command, info_name=self.default, parent=ctx)
        formatter.write_paragraph()
        usage = " ".join([ctx.command_path, *command.collect_usage_pieces(sub)])
        formatter.write_text(
            f"Without a command, {ctx.command_path} means {ctx.command_path} "
            f"{self.default} (usage: {usage}); its arguments and options:"
        )
        command.format_options(sub, formatter)


def default_group(name: str) -> type[DefaultHelpGroup]:
    """A click group class whose bare invocation runs its subcommand `name`."""
    return type(f"Default{name.title()}Group", (DefaultHelpGroup,), {"default": name})


def output_of(ctx: typer.Context, json_mode: bool) -> Output:
    """The Output `cli.run` put in the context (a fresh one when called another way)."""
    root = ctx.find_root().obj
    base = root if isinstance(root, Output) else Output()
    return Output(json_mode=json_mode, environ=base.environ, stdout=base.stdout, stderr=base.stderr)


def duration_option(
    default: float | str | None,
    flag: str,
    help: str,
    *,
    low: float = 0.0,
    high: float | None = None,
) -> Any:
    """An option taking a duration in the one grammar every command uses (`30s`, `2m`,
    `500ms`, or bare seconds: scalectl.duration), bounded to [low, high] seconds. A text
    default (`"90d"`) is shown as written and parsed like a given value."""

    def parse(text: str) -> float:
        from scalectl.duration import parse_duration

        try:
            seconds = parse_duration(str(text), allow_zero=low == 0)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if seconds < low or (high is not None and seconds > high):
            upper = f" and {high:g}s" if high is not None else ""
            raise typer.BadParameter(f"must be between {low:g}s{upper}, got '{text}'")
        return seconds

    return typer.Option(default, flag, parser=parse, metavar="DURATION", help=help)
