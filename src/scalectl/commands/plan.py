"""`scalectl plan`: capacity plan in, sized and validated configs out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from scalectl.commands.common import default_group, duration_option, output_of
from scalectl.errors import CheckFailed, InputError, ScalectlError
from scalectl.output import Output

if TYPE_CHECKING:
    from scalectl.plan import Prepared
    from scalectl.plan.validate import CheckResult


app = typer.Typer(
    cls=default_group("render"),
    help="Turn a capacity plan into sized, validated configs (render is the default).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("render")
def render_command(
    ctx: typer.Context,
    plans: list[Path] = typer.Argument(..., metavar="PLAN", help="Capacity plan YAML file(s)."),
    out: Path = typer.Option(
        Path("rendered"),
        "--out",
        "-o",
        help="Output directory. With several plans, each goes to OUT/<plan file stem>.",
    ),
    profile: str = typer.Option(
        "production", "--profile", "-p", help="Plan profile: production, local, or your own."
    ),
    check: bool = typer.Option(
        False, "--check", help="Run the real validators over the output (nginx, promtool, ...)."
    ),
    diff: bool = typer.Option(
        False, "--diff", help="Show how the output would change; write nothing. Exit 1 if it would."
    ),
    k8s_version: str | None = typer.Option(
        None, "--k8s-version", help="Kubernetes version to validate against (default: the plan's)."
    ),
    capacity_max_age: float = duration_option(
        "90d",
        "--capacity-max-age",
        "Warn when a service's capacity.per_replica_rps was measured (`scalectl loadtest "
        "capacity --write`) longer ago than this (90d; 0: never). A capacity with no "
        "measurement behind it always warns.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON result on stdout."),
) -> None:
    """Size the plan, render its configs, and optionally check them with the real tools.

    Example: scalectl plan examples/multi-tier.yaml --out rendered --check
    """
    from scalectl.files import diff_tree, preflight, write_tree
    from scalectl.plan import prepare, render_files
    from scalectl.plan.measured import capacity_warnings

    output = output_of(ctx, json_out)
    targets = [(p, out if len(plans) == 1 else out / p.stem) for p in plans]

    # Validate every plan and output path before writing anything.
    prepared: list[Prepared] = []
    problems: list[str] = []
    for path, target in targets:
        try:
            prepared.append(prepare(path, profile))
            if not diff:
                preflight(target)
        except InputError as exc:
            problems.extend(exc.lines or [exc.message])
    if problems:
        raise InputError(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in the input",
            lines=problems,
        )

    results: list[dict[str, Any]] = []
    failed: list[str] = []
    for item, (path, target) in zip(prepared, targets, strict=True):
        sizing = item.sizing
        result: dict[str, Any] = {
            "plan": str(path),
            "profile": profile,
            "out": str(target),
            "feasible": sizing.feasible,
            "sizing": sizing.to_json(),
            "files": [],
            "checks": [],
        }
        results.append(result)
        if not output.json_mode:
            _print_sizing(output, item)
        for warning in capacity_warnings(path, capacity_max_age / 86400 or None):
            output.warn(warning)
        if not sizing.feasible:
            failed.append(f"{path}: the plan is infeasible")
            continue
        files = render_files(item)
        if diff:
            text = diff_tree(target, files, output.warn)
            result["diff"] = text
            if text:
                failed.append(f"{target}: rendered output differs")
                if not output.json_mode:
                    output.stdout.write(text)
            elif not output.json_mode:
                output.info(f"{target}: up to date")
            continue
        result["files"] = write_tree(target, files, output.warn)
        if not output.json_mode:
            output.info(f"wrote {len(files)} files to {target}")
        if check:
            version = k8s_version or item.loaded.plan.kubernetes_version
            checks = _run_checks(output, target, version)
            result["checks"] = [c.__dict__ for c in checks]
            if any(c.status == "failed" for c in checks):
                failed.append(
                    f"{target}: {sum(c.status == 'failed' for c in checks)} check(s) failed"
                )

    if output.json_mode:
        output.emit_json({"ok": not failed, "results": results})
    if failed:
        raise CheckFailed("; ".join(failed))


def _run_checks(output: Output, target: Path, k8s_version: str) -> list[CheckResult]:
    from scalectl.plan.validate import run_checks

    if output.interactive:
        with output.console.status("running validators"):
            checks = run_checks(target, k8s_version, output.environ)
    else:
        checks = run_checks(target, k8s_version, output.environ)
    if not output.json_mode:
        _print_checks(output, target, checks)
    return checks


def _print_sizing(output: Output, item: Prepared) -> None:
    from rich.table import Table

    sizing = item.sizing
    title = f"{item.loaded.plan.name} ({item.loaded.profile_name})"
    table = Table(title=f"Sizing: {title}", title_justify="left")
    for col in ("service", "design rps", "replicas", "min-max", "processes", "in flight", "pool"):
        table.add_column(col, justify="left" if col == "service" else "right")
    for s in sizing.services:
        table.add_row(
            s.name,
            f"{s.design_rps:g}",
            str(s.replicas),
            f"{s.min_replicas}-{s.max_replicas}",
            str(s.processes),
            f"{s.in_flight_per_replica:.1f}",
            f"{s.pool_max} (needs {s.pool_needed})" if s.pool_max else "-",
        )
    output.console.print(table)
    if sizing.queues:
        queues = Table(title="Queues (Erlang C)", title_justify="left")
        for col in ("worker/queue", "consumers", "utilization", "P(wait)", "P(wait>target)"):
            queues.add_column(col, justify="left" if col == "worker/queue" else "right")
        for q in sizing.queues:
            queues.add_row(
                f"{q.worker}/{q.queue}",
                str(q.consumers),
                f"{q.utilization:.2f}",
                f"{q.p_wait:.3f}",
                f"{q.p_wait_over_target:.3f} (≤ {1 - q.wait_quantile:.2f})",
            )
        output.console.print(queues)
        for w in sizing.workers:
            output.info(
                f"workers.{w.name}: {w.consumers_needed} consumers -> {w.replicas} replicas "
                f"of {w.consumers_per_replica} (range {w.min_replicas}-{w.max_replicas})"
            )
    if sizing.database:
        d = sizing.database
        bouncer = (
            f"; PgBouncer pool {d.pgbouncer_default_pool_size}, "
            f"max_client_conn {d.pgbouncer_max_client_conn}"
            if d.pgbouncer
            else ""
        )
        output.info(
            f"database: {d.client_connections} client connections possible, "
            f"{d.active_at_peak} busy at peak, {d.available} available{bouncer}"
        )
    if sizing.cache:
        c = sizing.cache
        output.info(
            f"cache: {c.keys} keys × {c.bytes_per_key} B -> maxmemory {c.maxmemory} "
            f"({c.eviction_policy})"
        )
    for warning in sizing.warnings:
        output.warn(warning)
    for reason in sizing.infeasible:
        output.error(f"infeasible: {reason}")


def _print_checks(output: Output, target: Path, checks: list[CheckResult]) -> None:
    from rich.table import Table

    table = Table(title=f"Checks: {target}", title_justify="left")
    table.add_column("tool")
    table.add_column("file")
    table.add_column("result")
    for c in checks:
        style = {"ok": "green", "failed": "red", "skipped": "yellow"}[c.status]
        shown = c.status if c.status != "skipped" else f"skipped: {c.detail}"
        rel = (
            Path(c.target).relative_to(target)
            if Path(c.target).is_relative_to(target)
            else c.target
        )
        table.add_row(c.tool, str(rel), f"[{style}]{shown}[/{style}]")
    output.console.print(table)
    for c in checks:
        if c.status == "failed":
            output.error(f"{c.tool} {c.target}:")
            for line in c.detail.splitlines():
                output.error(f"  {line}")


@app.command("init")
def init_command(
    ctx: typer.Context,
    path: Path = typer.Argument(Path("scalectl-plan.yaml"), help="Where to write the plan."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON result on stdout."),
) -> None:
    """Write a commented starter plan to edit.

    Example: scalectl plan init my-service.yaml
    """
    from scalectl import resources
    from scalectl.files import write_file

    output = output_of(ctx, json_out)
    if path.exists() and not force:
        raise InputError(f"{path}: already exists; pass --force to overwrite")
    write_file(path, resources.read_template("plan/starter.yaml").encode())
    if output.json_mode:
        output.emit_json({"ok": True, "path": str(path)})
    else:
        output.info(f"wrote {path}; next: scalectl plan {path} --check")


@app.command("schema")
def schema_command(
    ctx: typer.Context,
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to a file, not stdout."),
    json_out: bool = typer.Option(
        False, "--json", help="With --out, print a JSON result (the schema itself is JSON)."
    ),
) -> None:
    """Print the plan's JSON Schema, for editor autocomplete and CI validation.

    Example: scalectl plan schema -o plan.schema.json
    """
    from scalectl.files import write_file
    from scalectl.plan.schema import json_schema

    output = output_of(ctx, json_out)
    text = json.dumps(json_schema(), indent=2) + "\n"
    if out is None:
        output.stdout.write(text)
        return
    write_file(out, text.encode())
    if output.json_mode:
        output.emit_json({"ok": True, "path": str(out)})
    else:
        output.info(f"wrote {out}")


__all__ = ["ScalectlError", "app"]
