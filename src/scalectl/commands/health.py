"""`scalectl health`: probe instances, the balancer or URLs; gate a deployment on them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from scalectl.commands.common import DefaultHelpGroup, output_of
from scalectl.errors import CheckFailed
from scalectl.output import Output

if TYPE_CHECKING:
    from scalectl.health.probe import HealthSummary
    from scalectl.health.settings import HealthSettings
    from scalectl.health.watch import Tracker


class _HealthGroup(DefaultHelpGroup):
    """`scalectl health [URL]...` is `scalectl health probe [URL]...`, even with no
    arguments at all (probe the running stack)."""

    default = "probe"

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, args or [self.default])


app = typer.Typer(
    cls=_HealthGroup,
    help="Probe health endpoints and /metrics of instances, the balancer or URLs "
    "(probe is the default).",
    no_args_is_help=False,
    rich_markup_mode=None,
)


@app.command("probe")
def probe_command(
    ctx: typer.Context,
    urls: list[str] | None = typer.Argument(
        None,
        metavar="URL",
        help="URLs to probe (default: the running `scalectl stack`). A URL without a path "
        "gets /health, /health/ready, /health/comprehensive and /metrics; with a path, "
        "exactly that.",
        show_default=False,
    ),
    plan: Path | None = typer.Option(
        None, "--plan", help="Probe the instances and balancer this plan's profile names."
    ),
    profile: str = typer.Option("local", "--profile", "-p", help="The plan's profile."),
    state_dir: Path = typer.Option(
        Path(".scalectl/stack"), "--state-dir", help="The running stack to probe."
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="A health config (YAML): endpoints and conditions."
    ),
    conditions: list[str] = typer.Option(
        [],
        "--condition",
        "-C",
        help="A condition such as '[STATUS] == 200'; replaces the defaults of every check.",
    ),
    check_timeout: str | None = typer.Option(
        None, "--check-timeout", help="Per-check time limit: 5s, 500ms (default 5s)."
    ),
    rate_window: str | None = typer.Option(
        None,
        "--rate-window",
        help="At least this long between the two scrapes rate() and increase() compare "
        "(default 5s; with --watch/--wait the --interval, the previous round's scrape "
        "being the first).",
    ),
    headers: list[str] = typer.Option([], "--header", "-H", help="Extra header 'Name: value'."),
    token_env: str | None = typer.Option(
        None, "--token-env", metavar="NAME", help="Send 'Authorization: Bearer $NAME'."
    ),
    allow_host: list[str] = typer.Option(
        [],
        "--allow-host",
        help="A non-loopback host from --plan or --config that --token-env's token may go "
        "to (URL arguments are allowed as given).",
    ),
    insecure: bool = typer.Option(False, "--insecure", help="Do not verify TLS certificates."),
    ca_cert: Path | None = typer.Option(
        None, "--ca-cert", help="Verify TLS against this CA bundle (PEM)."
    ),
    strict: bool = typer.Option(False, "--strict", help="Count warn as unhealthy: --warn-is fail."),
    warn_is: str | None = typer.Option(
        None,
        "--warn-is",
        metavar="pass|fail",
        help="What a warn row (degraded) means for the exit code (default pass).",
    ),
    vocabulary: str | None = typer.Option(
        None,
        "--vocabulary",
        metavar="NAME",
        help="Status words of JSON bodies: any (default), ietf, actuator or healthy; "
        "an endpoint's own in --config wins.",
    ),
    watch: bool = typer.Option(False, "--watch", help="Re-probe every --interval; a live table."),
    wait: bool = typer.Option(
        False, "--wait", help="Block until healthy (exit 0) or --timeout (exit 1): a CI gate."
    ),
    timeout: str | None = typer.Option(
        None, "--timeout", help="Bound --watch/--wait: 120s, 5m (--wait default 120s)."
    ),
    interval: str | None = typer.Option(
        None, "--interval", help="Time between rounds of --watch/--wait (default 2s)."
    ),
    failure_threshold: int | None = typer.Option(
        None, "--failure-threshold", min=1, help="Failing rounds in a row to turn unhealthy (3)."
    ),
    success_threshold: int | None = typer.Option(
        None, "--success-threshold", min=1, help="Passing rounds in a row to turn healthy (2)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Probe health endpoints and /metrics; exit 0 healthy, 1 unhealthy, 2 bad input.

    With no URL, --plan or --config: every instance of the running stack directly
    (/health, /health/ready, /health/comprehensive with its components, /metrics) and
    the balancer. Warn (degraded) is healthy unless --warn-is fail (--strict). Status
    words of JSON bodies, conditions (rate(), increase() too)
    and the config format: docs/health.md.

    Example: scalectl health --wait --timeout 120s
    """
    from scalectl.health.settings import HealthFlags, resolve

    output = output_of(ctx, json_out)
    flags = HealthFlags(
        urls=urls or [],
        plan=plan,
        profile=profile,
        state_dir=state_dir,
        config_path=config,
        condition_texts=conditions,
        check_timeout=check_timeout,
        rate_window=rate_window,
        header_texts=headers,
        token_env=token_env,
        allow_host=allow_host,
        insecure=insecure,
        ca_cert=ca_cert,
        watch=watch,
        wait=wait,
        timeout=timeout,
        interval=interval,
        failure_threshold=failure_threshold,
        success_threshold=success_threshold,
        vocabulary=vocabulary,
        warn_is=warn_is,
        strict=strict,
    )
    settings = resolve(flags, output.environ, interactive=output.interactive)
    for note in settings.notes:
        output.info(f"note: {note}")
    if wait or watch:
        _rounds(output, settings, wait=wait)
        return
    from scalectl.health.probe import probe

    summary = probe(settings.checks, settings.options, strict=settings.strict, notes=settings.notes)
    if output.json_mode:
        output.emit_json(summary.to_json())
    else:
        output.console.print(_table(summary))
    if not summary.healthy:
        raise CheckFailed(_unhealthy(summary))
    output.info(_healthy(summary))


def _rounds(output: Output, settings: HealthSettings, *, wait: bool) -> None:
    from scalectl.health.probe import Prober
    from scalectl.health.watch import Tracker, WatchOutcome, run_rounds

    assert settings.timeout is not None
    prober = Prober(settings.checks, settings.options, strict=settings.strict, notes=settings.notes)
    tracker = Tracker(settings.failure_threshold, settings.success_threshold)
    live = _live(output) if output.interactive else None
    last_line = [""]
    done_rounds = [0]

    def on_round(summary: HealthSummary, changes: list[Any]) -> None:
        done_rounds[0] += 1
        if live is not None:
            live.update(_table(summary, tracker), refresh=True)
            return
        for change in changes:
            output.info(change.line())
        line = _progress(tracker, summary)
        if line != last_line[0]:
            output.info(line)
            last_line[0] = line

    def one(left: float | None) -> HealthSummary:
        return prober.round(left)

    stop = Tracker.all_healthy if wait else None
    started = time.monotonic()
    interrupted = False
    if live is not None:
        live.start()
    try:
        outcome = run_rounds(
            one,
            tracker,
            interval=settings.interval,
            timeout=settings.timeout,
            on_round=on_round,
            stop_when=stop,
        )
    except KeyboardInterrupt:
        # Ctrl-C is how a watch at a terminal ends: show where things stood, then exit 130.
        interrupted = True
        outcome = WatchOutcome(done_rounds[0], time.monotonic() - started, False)
    finally:
        prober.close()
        if live is not None:
            live.stop()
    summary = tracker.last
    if summary is None:  # interrupted before the first round ended
        raise KeyboardInterrupt
    if output.json_mode:
        output.emit_json(
            {
                **summary.to_json(),
                "mode": "wait" if wait else "watch",
                "rounds": outcome.rounds,
                "elapsed_seconds": round(outcome.elapsed_seconds, 2),
                "checks": [s.to_json() for s in tracker.checks.values()],
            }
        )
    elif live is None:
        output.console.print(_table(summary, tracker))
    took = f"{outcome.rounds} round(s), {outcome.elapsed_seconds:.1f}s"
    if interrupted:
        raise KeyboardInterrupt
    if wait:
        if outcome.done:
            output.info(f"healthy after {took}")
            return
        raise CheckFailed(
            f"not healthy within {settings.timeout:g}s ({took}); failing now:",
            lines=[r.line() for r in summary.failing()] or ["(flapping: no check stayed healthy)"],
        )
    bad = tracker.unhealthy()
    if bad:
        raise CheckFailed(
            f"{len(bad)} check(s) unhealthy after {took}",
            lines=[f"{s.key[0]} {s.key[1]}: {s.failures} failures in a row" for s in bad],
        )
    output.info(f"no check unhealthy after {took}")


def _live(output: Output) -> Any:
    from rich.live import Live

    return Live(console=output.console, auto_refresh=False, transient=False)


def _progress(tracker: Tracker, summary: HealthSummary) -> str:
    states = [s.state for s in tracker.checks.values()]
    counts = ", ".join(f"{states.count(s)} {s}" for s in ("healthy", "pending", "unhealthy"))
    failing = summary.failing()
    first = f"; failing: {failing[0].line()}" if failing else ""
    more = f" (+{len(failing) - 1} more)" if len(failing) > 1 else ""
    return f"checks: {counts}{first}{more}"


def _table(summary: HealthSummary, tracker: Tracker | None = None) -> Any:
    from rich.table import Table
    from rich.text import Text

    styles = {"pass": "green", "warn": "yellow", "fail": "red"}
    table = Table(title="Health", title_justify="left")
    columns = ["target", "component", "status", "latency", "detail"]
    if tracker is not None:
        columns.insert(3, "state")
    for col in columns:
        table.add_column(col, justify="right" if col == "latency" else "left")
    for row in summary.rows:
        # Text(): details quote conditions such as [STATUS], which rich would read as markup.
        cells = [
            Text(row.target if row.component is None else ""),
            Text(row.check if row.component is None else f"  {row.component}"),
            Text(row.status, style=styles[row.status]),
            Text("-" if row.latency_ms is None else f"{row.latency_ms:.0f} ms"),
            Text(row.detail),
        ]
        if tracker is not None:
            state = tracker.state_of(row.key) if row.component is None else None
            cells.insert(3, Text(state.state if state else ""))
        table.add_row(*cells)
    return table


def _unhealthy(summary: HealthSummary) -> str:
    failing = summary.failing()
    why = (
        " (warn counts as fail)"
        if summary.strict and any(r.status == "warn" for r in failing)
        else ""
    )
    return f"unhealthy: {len(failing)} of {len(summary.rows)} rows failing{why}"


def _healthy(summary: HealthSummary) -> str:
    counts = summary.counts()
    warn = f", {counts['warn']} warn" if counts["warn"] else ""
    return f"healthy: {counts['pass']} pass{warn} ({len(summary.rows)} rows)"
