"""The typer app and the one error handler around it. Commands live in scalectl.commands."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import IO

import typer

from scalectl import __version__, crashlog, inputlimit
from scalectl.commands import checklist as checklist_command
from scalectl.commands import doctor as doctor_command
from scalectl.commands import drill as drill_command
from scalectl.commands import health as health_command
from scalectl.commands import loadtest as loadtest_command
from scalectl.commands import plan as plan_command
from scalectl.commands import stack as stack_command
from scalectl.errors import ExitCode, InputError, ScalectlError
from scalectl.output import Output
from scalectl.usertext import shown

app = typer.Typer(
    name="scalectl",
    help="Prove a web service will hold its traffic: capacity plans, a local reference "
    "stack, load tests with SLO gates, health probes and deployment checklists.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(plan_command.app, name="plan")
app.add_typer(stack_command.app, name="stack")
app.add_typer(loadtest_command.app, name="loadtest")
app.add_typer(health_command.app, name="health")
app.add_typer(checklist_command.app, name="checklist")
app.add_typer(drill_command.app, name="drill")
app.command("doctor")(doctor_command.doctor)


def _version(ctx: typer.Context, value: bool) -> None:
    if value:
        out = ctx.find_root().obj
        stream = out.stdout if isinstance(out, Output) else sys.stdout
        stream.write(f"scalectl {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Prove a web service will hold its traffic."""


def run(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run the CLI and return its exit code; every error path ends here."""
    env = dict(os.environ if environ is None else environ)
    out = Output(
        environ=env,
        stdout=stdout or sys.stdout,
        stderr=stderr or sys.stderr,
    )
    args = list(sys.argv[1:] if argv is None else argv)
    limit = None
    try:
        limit = inputlimit.LIMIT.set(inputlimit.limit_of(env))
        result = app(args=args, prog_name="scalectl", standalone_mode=False, obj=out)
    except InputError as exc:
        # Every line of bad-input errors once more through shown(): a call site that
        # forgot it still cannot split a line or reach the terminal's escapes (issue 11).
        out.error(f"error: {shown(exc.message, None)}")
        for line in exc.lines:
            out.error(shown(line, None))
        return int(exc.exit_code)
    except ScalectlError as exc:
        out.error(f"error: {exc.message}")
        for line in exc.lines:
            out.error(line)
        return int(exc.exit_code)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        out.error("interrupted")
        return int(ExitCode.INTERRUPTED)
    except typer.TyperException as exc:
        # Usage errors (typer's vendored click): "Usage: ..." plus the problem.
        show = getattr(exc, "show", None)
        if show is not None:
            show(file=out.stderr)
        else:
            out.error(f"error: {exc}")
        return int(ExitCode.BAD_INPUT)
    except KeyboardInterrupt:
        out.error("interrupted")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # a bug: keep the traceback out of the user's way
        log = crashlog.write(
            env,
            sys.argv if argv is None else ["scalectl", *args],
            __version__,
            traceback.format_exc(),
        )
        out.error(f"internal error: {type(exc).__name__}: {exc}")
        out.error(f"the traceback is in {log}; please attach it to a bug report")
        return int(ExitCode.INTERNAL)
    finally:
        if limit is not None:
            inputlimit.LIMIT.reset(limit)
    code = int(result) if isinstance(result, int) else 0
    if code == ExitCode.INTERRUPTED:
        # typer turns Ctrl-C into a silent return of 130; say what happened.
        out.error("interrupted")
    return code


def main() -> None:
    """The `scalectl` console script: run the command line and exit with its code."""
    sys.exit(run())
