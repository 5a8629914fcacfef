"""`scalectl drill`: fault drills against the local stack, with figures and a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from scalectl.commands.common import default_group, duration_option, output_of
from scalectl.errors import CheckFailed, ScalectlError
from scalectl.output import Output

app = typer.Typer(
    cls=default_group("run"),
    help="Inject one fault at a time into the local stack under load and measure what users "
    "saw (run is the default).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("run")
def run_command(
    ctx: typer.Context,
    names: list[str] = typer.Argument(..., metavar="DRILL...", help="Drill names, or all."),
    state_dir: Path = typer.Option(
        Path(".scalectl/stack"), "--state-dir", help="The stack to drill (from `stack up`)."
    ),
    report_dir: Path = typer.Option(
        Path("drill-report"), "--report-dir", help="Where drill.json, junit.xml, report.html go."
    ),
    instance: str | None = typer.Option(
        None, "--instance", help="The app instance to fault (default: the first)."
    ),
    direct: bool = typer.Option(
        False, "--direct", help="worker-kill: send the load to the instance, not through nginx."
    ),
    max_unavailable: int = typer.Option(
        1, "--max-unavailable", min=1, help="rolling-restart: instances restarted at once."
    ),
    settle: float | None = duration_option(
        None,
        "--settle",
        "rolling-restart: wait between instances (default: the plan's "
        "load_balancer.fail_timeout_seconds).",
    ),
    outage: float = duration_option(
        8.0,
        "--outage",
        "How long Redis or PostgreSQL stay down, or slow for slow-* (8s).",
        low=1,
        high=300,
    ),
    delay: float = duration_option(
        0.2,
        "--delay",
        "slow-redis, slow-postgres: added to every round trip to the dependency (200ms).",
        low=0.001,
        high=10,
    ),
    surge_users: int = typer.Option(
        200, "--surge", min=1, help="overload: users without think time in the surge."
    ),
    before: float | None = duration_option(
        None, "--before", "Load before the fault (default per drill).", low=1, high=600
    ),
    after: float | None = duration_option(
        None, "--after", "Load after the fault (default per drill).", low=1, high=600
    ),
    job_wait: float = duration_option(
        90.0, "--job-wait", "queue-worker-kill: wait for jobs to finish.", low=1, high=900
    ),
    max_failed: int = typer.Option(0, "--max-failed", min=0, help="Failed requests allowed."),
    min_availability: float | None = typer.Option(
        None,
        "--min-availability",
        min=0,
        max=1,
        help="Share answered during an outage (default: the stack plan's slo.availability.target).",
    ),
    max_recovery: float = duration_option(
        10.0, "--max-recovery", "Time after a fault until no failures for 3 s."
    ),
    max_replacement: float = duration_option(
        10.0, "--max-replacement", "worker-kill: time until a new worker answers."
    ),
    max_slow_p95: float | None = duration_option(
        None,
        "--max-slow-p95",
        "slow-redis, slow-postgres: worst per-second p95 while slowed (default 1.5s for "
        "Redis, 3s for PostgreSQL: the app's own timeouts plus a margin).",
    ),
    no_drain: bool = typer.Option(
        False,
        "--no-drain",
        help="rolling-restart, graceful-shutdown: stop instances without taking them out "
        "of nginx first.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print drill.json on stdout."),
) -> None:
    """Run fault drills against the running `scalectl stack` and gate on their figures.

    Exit 0 every drill passed, 1 a drill failed, 4 inconclusive, 2 bad input.

    Example: scalectl drill worker-kill redis-outage --report-dir drill-report
    """
    from scalectl.drill import catalog, engine
    from scalectl.drill.kinds.base import DrillGates, DrillOptions
    from scalectl.drill.reports import write_reports
    from scalectl.stack.run import require_state

    output = output_of(ctx, json_out)
    kinds = catalog.resolve(names)
    state = require_state(state_dir)
    gates = catalog.plan_gates(
        state,
        DrillGates(
            max_failed=max_failed,
            max_replacement_s=max_replacement,
            max_recovery_s=max_recovery,
            max_slow_p95_ms=None if max_slow_p95 is None else max_slow_p95 * 1000,
        ),
        min_availability=min_availability,
    )
    options = DrillOptions(
        instance=instance,
        direct=direct,
        drain=not no_drain,
        max_unavailable=max_unavailable,
        settle_seconds=settle,
        outage_seconds=outage,
        delay_seconds=delay,
        job_wait_seconds=job_wait,
        surge_users=surge_users,
        before_seconds=before,
        after_seconds=after,
    )
    specs = catalog.prepare(kinds, state, gates, options)
    results = []
    try:
        for spec in specs:
            output.info(f"drill {spec.name}: {spec.description}")
            result = engine.run(
                spec, state_dir.absolute(), state, environ=output.environ, progress=output.info
            )
            results.append(result)
            output.info(f"drill {spec.name}: {result.verdict}")
            if result.interrupted:
                break
    except ScalectlError:
        if results:  # the drills that ran keep their reports
            write_reports(report_dir, results)
        raise
    data, written = write_reports(report_dir, results)
    if output.json_mode:
        output.emit_json(data)
    else:
        _print(output, data, written)
    if any(r.interrupted for r in results):
        raise typer.Exit(130)
    if data["verdict"] == "fail":
        failed = [d["name"] for d in data["drills"] if d["verdict"] == "fail"]
        raise CheckFailed(f"drill failed: {', '.join(failed)}")
    if data["verdict"] == "inconclusive":
        from scalectl.errors import Inconclusive

        raise Inconclusive("a drill was inconclusive (see its reasons)")


def _print(output: Output, data: dict[str, Any], written: list[Path]) -> None:
    from rich.table import Table
    from rich.text import Text

    styles = {"pass": "green", "fail": "red", "inconclusive": "yellow", "info": ""}
    table = Table(title="Drills", title_justify="left")
    for col in ("drill", "figure", "value", "threshold", "result", "detail"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for d in data["drills"]:
        for f in d["figures"]:
            value = "-" if f["value"] is None else f"{f['value']:g} {f['unit']}"
            threshold = f"{f['comparator']} {f['threshold']:g}" if f["comparator"] else ""
            table.add_row(
                Text(d["name"]),
                f["name"],
                value,
                threshold,
                Text(f["status"], style=styles[f["status"]]),
                Text(f["detail"]),
            )
    output.console.print(table)
    for d in data["drills"]:
        for reason in d["reasons"]:
            output.warn(f"{d['name']}: {reason}")
    output.info(f"verdict: {data['verdict']}; reports in {', '.join(str(p) for p in written)}")


@app.command("list")
def list_command(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print the drills as JSON."),
) -> None:
    """List the drills and what each does.

    Example: scalectl drill list
    """
    from scalectl.drill import catalog

    output = output_of(ctx, json_out)
    described = catalog.descriptions()
    if output.json_mode:
        output.emit_json(described)
        return
    for name, text in described.items():
        output.console.print(f"{name:<18} {text}", markup=False)
