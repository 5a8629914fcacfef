"""`scalectl doctor`: the external tools scalectl uses, found or missing, and installing
the missing ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from scalectl.commands.common import output_of
from scalectl.errors import InputError

if TYPE_CHECKING:
    from scalectl.doctor import Diagnosis, Finding, Report
    from scalectl.output import Output


def doctor(
    ctx: typer.Context,
    install: bool = typer.Option(
        False,
        "--install",
        help="Install the missing Debian packages with apt-get (root on Debian only; "
        "otherwise print the commands and exit 2).",
    ),
    optional: bool = typer.Option(
        False, "--optional", help="With --install: the optional tools' packages too."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="With --install: print the apt-get commands, run nothing."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON result on stdout."),
) -> None:
    """Report the external tools scalectl uses: version, path, what for, how to install.

    Required (the pipeline of docs/ci.md needs them): nginx, promtool, amtool, PostgreSQL
    and Redis/Valkey servers (system or the stack extra's wheels), gunicorn (stack extra),
    locust (loadtest extra), gixy, kubernetes-validate and check-jsonschema (validators
    extra). Optional: prometheus (the stack's scraping), chromium, wrk.

    --install runs apt-get for the missing Debian packages; a missing extra is a pipx or
    pip command to run, printed. Exit 0 when every required tool is found, 1 when one is
    missing (or apt-get failed), 2 when --install cannot run apt-get here.

    Example: scalectl doctor --install
    """
    from scalectl.doctor import diagnose

    output = output_of(ctx, json_out)
    if dry_run and not install:
        raise InputError("--dry-run goes with --install: scalectl doctor --install --dry-run")
    diagnosis = diagnose(
        output.environ,
        install=install,
        include_optional=optional,
        dry_run=dry_run,
        progress=output.info,
    )
    if output.json_mode:
        output.emit_json(_payload(diagnosis))
    else:
        _print_report(output, diagnosis.report)
        _print_next_steps(output, diagnosis)
    diagnosis.verdict()


def _print_report(output: Output, report: Report) -> None:
    # Plain aligned lines, not a table: CI logs are narrow and paths must not be cut.
    from scalectl.doctor import PYTHON_ENVIRONMENT

    for f in report.findings:
        kind = "required" if f.tool.required else "optional"
        if f.found:
            status, where, style = "found", f.path or "", ""
            if f.source and f.source not in ("PATH", PYTHON_ENVIRONMENT):
                where += f"  ({f.source})"
        else:
            status, where = "missing", f"install: {f.install_hint}"
            style = "red" if f.tool.required else "yellow"
        line = f"{status:<8} {f.tool.name:<20} {f.version or '-':<16} {where}"
        output.console.print(line, markup=False, style=style or None)
        output.console.print(f"{'':<9}{kind}: {f.tool.used_for}", markup=False, style="dim")


def _print_next_steps(output: Output, diagnosis: Diagnosis) -> None:
    report, plan = diagnosis.report, diagnosis.plan
    if diagnosis.installed:
        output.info(f"installed: {', '.join(diagnosis.installed)}")
    if plan.packages and not diagnosis.refused:  # a refusal lists the commands in its error
        if diagnosis.installed:
            output.info(f"still missing after apt-get: {', '.join(plan.packages)}")
        else:
            flags = "--install --optional" if diagnosis.include_optional else "--install"
            lead = "would run" if diagnosis.install else f"scalectl doctor {flags} would run"
            blocked = f" (as root; here {plan.blocked})" if plan.blocked else ""
            output.info(f"{lead}{blocked}:")
            for argv in plan.commands:
                output.info(f"  {' '.join(argv)}")
    if plan.extras_command:
        output.info(f"to add the missing extras: {plan.extras_command}")
    if report.ok and not report.missing_optional:
        output.info("every tool scalectl uses is installed")
    elif report.ok:
        output.info("every required tool is installed")


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "name": f.tool.name,
        "found": f.found,
        "required": f.tool.required,
        "version": f.version,
        "path": f.path,
        "source": f.source,
        "used_for": f.tool.used_for,
        "install": {"debian": f.tool.debian, "pip_extra": f.tool.pip_extra},
    }


def _payload(diagnosis: Diagnosis) -> dict[str, Any]:
    report, plan = diagnosis.report, diagnosis.plan
    return {
        "ok": report.ok,
        "tools": [_finding(f) for f in report.findings],
        "missing_required": [f.tool.name for f in report.missing_required],
        "missing_optional": [f.tool.name for f in report.missing_optional],
        "install": {
            "requested": diagnosis.install,
            "dry_run": diagnosis.dry_run,
            "installed": list(diagnosis.installed),
            "packages": list(plan.packages),
            "commands": [list(argv) for argv in plan.commands],
            "blocked": plan.blocked,
            "extras": list(plan.extras),
            "extras_command": plan.extras_command,
        },
    }
