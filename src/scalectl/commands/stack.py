"""`scalectl stack up | down | status | logs`: the reference app's full stack on loopback."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from scalectl.commands.common import duration_option, output_of
from scalectl.errors import CheckFailed, InputError

app = typer.Typer(
    help="Run the reference app with PostgreSQL, Redis, workers, nginx and Prometheus locally.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

STATE_DIR = Path(".scalectl/stack")
_state_opt = typer.Option(STATE_DIR, "--state-dir", help="Where pids, ports and logs are kept.")
_json_opt = typer.Option(False, "--json", help="Print a JSON result on stdout.")


@app.command("up")
def up_command(
    ctx: typer.Context,
    plan: Path | None = typer.Option(
        None, "--plan", help="Capacity plan (default: the reference app's own plan)."
    ),
    profile: str = typer.Option("local", "--profile", "-p", help="A loopback profile."),
    state_dir: Path = _state_opt,
    timeout: float = duration_option(
        120.0, "--timeout", "How long to wait for health (2m).", low=1, high=3600
    ),
    balancer: bool = typer.Option(
        True, "--balancer/--no-balancer", help="Run nginx in front (when it is installed)."
    ),
    json_out: bool = _json_opt,
) -> None:
    """Start the stack and wait until every service is healthy.

    Example: scalectl stack up --plan examples/reference-app.yaml
    """
    from scalectl.stack.run import default_plan, up

    output = output_of(ctx, json_out)
    result = up(
        plan or default_plan(),
        profile,
        state_dir,
        timeout=timeout,
        balancer=balancer,
        environ=output.environ,
        progress=output.info,
    )
    state = result.state
    if output.json_mode:
        output.emit_json({"ok": True, "already_up": result.already_up, **asdict(state)})
        return
    if result.already_up:
        output.info(f"the stack is already up (state in {state.state_dir})")
    else:
        output.info(f"the stack is up: {len(state.members)} processes")
    for note in state.notes:
        output.info(f"note: {note}")
    for name, url in sorted(state.urls.items()):
        output.info(f"{name}: {url}")


@app.command("down")
def down_command(
    ctx: typer.Context, state_dir: Path = _state_opt, json_out: bool = _json_opt
) -> None:
    """Stop every process of the stack: gracefully, then forcefully.

    Example: scalectl stack down
    """
    from scalectl.stack.shutdown import down

    output = output_of(ctx, json_out)
    stopped = down(state_dir, progress=output.info)
    if output.json_mode:
        output.emit_json(
            {"ok": True, "stopped": [asdict(s) for s in stopped] if stopped is not None else []}
        )
        return
    if stopped is None:
        output.info(f"no stack is running ({state_dir})")
        return
    skipped = [s.name for s in stopped if s.skipped]
    done = [s for s in stopped if not s.skipped]
    forced = [s.name for s in done if not s.graceful]
    output.info(
        f"stopped {len(done)} processes"
        + (f" (forced or gone: {', '.join(forced)})" if forced else "")
        + (f"; not verified as the stack's, left alone: {', '.join(skipped)}" if skipped else "")
    )
    if skipped:
        output.info(f"state kept in {state_dir}: remove it once those processes are stopped")


@app.command("status")
def status_command(
    ctx: typer.Context, state_dir: Path = _state_opt, json_out: bool = _json_opt
) -> None:
    """Show each service's pid, port, health and uptime; exit 1 if any is down.

    Example: scalectl stack status --json
    """
    from rich.table import Table

    from scalectl.stack.run import require_state
    from scalectl.stack.status import status

    output = output_of(ctx, json_out)
    state = require_state(state_dir)
    rows = status(state)
    bad = [r for r in rows if r.state != "running" or r.health == "fail"]
    if output.json_mode:
        output.emit_json({"ok": not bad, "members": [asdict(r) for r in rows], "urls": state.urls})
    else:
        table = Table(title=f"Stack: {state.plan} ({state.profile})", title_justify="left")
        for col in ("service", "pid", "port", "state", "health", "uptime"):
            table.add_column(col)
        for r in rows:
            uptime = f"{r.uptime_seconds:.0f}s" if r.uptime_seconds is not None else "-"
            style = "green" if r.state == "running" and r.health != "fail" else "red"
            table.add_row(
                r.name,
                str(r.pid),
                str(r.port or "-"),
                f"[{style}]{r.state}[/{style}]",
                r.health,
                uptime,
            )
        output.console.print(table)
        for r in bad:
            output.error(f"{r.name}: {r.state}, health {r.health} {r.detail}".rstrip())
    if bad:
        raise CheckFailed(f"{len(bad)} of {len(rows)} services are not healthy")


@app.command("logs")
def logs_command(
    ctx: typer.Context,
    service: str = typer.Argument(..., help="A service name from `stack status`."),
    lines: int = typer.Option(50, "--lines", "-n", help="How many lines from the end."),
    state_dir: Path = _state_opt,
    json_out: bool = _json_opt,
) -> None:
    """Print the end of one service's log.

    Example: scalectl stack logs api-1 -n 100
    """
    import difflib

    from scalectl.stack.run import require_state
    from scalectl.stack.state import read_log

    output = output_of(ctx, json_out)
    state = require_state(state_dir)
    member = state.member(service)
    if member is None:
        names = [m.name for m in state.members]
        close = difflib.get_close_matches(service, names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f" (services: {', '.join(names)})"
        raise InputError(f"no service named '{service}'{hint}")
    text = read_log(state, member, lines)
    if output.json_mode:
        output.emit_json(
            {"ok": True, "service": service, "log": member.log, "lines": text.splitlines()}
        )
    else:
        output.stdout.write(text + ("\n" if text else ""))
