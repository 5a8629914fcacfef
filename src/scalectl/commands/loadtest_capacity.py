"""`scalectl loadtest capacity`: step an open-model rate until the SLO breaks, bisect, repeat,
and report the sustainable rate as an interval (and write it to the plan)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from scalectl.commands.common import duration_option, output_of
from scalectl.errors import ExitCode, Inconclusive, InputError
from scalectl.output import Output


def capacity_command(
    ctx: typer.Context,
    locustfile: str | None = typer.Argument(
        None,
        metavar="[SCENARIO|LOCUSTFILE]",
        help="What each task sends: a scenario name or a locustfile. Default: one GET of "
        "--path per task.",
        show_default=False,
    ),
    host: str | None = typer.Option(
        None,
        "--host",
        "-H",
        help="Target URL: one replica, or the balancer (default: the "
        "running `scalectl stack`'s balancer).",
    ),
    path: str = typer.Option("/", "--path", help="Without a locustfile: the path to GET."),
    plan: Path | None = typer.Option(
        None, "--plan", help="Hold this plan's SLO: its latency objective (or p95) and error rate."
    ),
    service: str | None = typer.Option(
        None, "--service", help="The plan's service measured (default: its only one)."
    ),
    p95_ms: float | None = typer.Option(
        None,
        "--p95-ms",
        min=0.001,
        help="Hold p95 latency at or under this (ms); wins over the plan.",
    ),
    max_error_rate: float | None = typer.Option(
        None,
        "--max-error-rate",
        min=0,
        max=1,
        help="Hold the failed fraction at or under this "
        "(default: the plan's slo.error_rate, else 0.01).",
    ),
    start_rate: float = typer.Option(10.0, "--start-rate", min=0.1, help="First step, tasks/s."),
    max_rate: float = typer.Option(
        1000.0, "--max-rate", min=0.1, help="No run asks for more than this, tasks/s."
    ),
    factor: float = typer.Option(1.5, "--factor", min=1.01, help="Each step's rate over the last."),
    probes: int = typer.Option(
        4,
        "--probes",
        min=0,
        max=20,
        help="Bisection runs between the last step that held and the first that broke, at most.",
    ),
    resolution: float = typer.Option(
        0.05,
        "--resolution",
        min=0.001,
        help="Stop bisecting once the interval is this narrow (0.05: high within 5% of low).",
    ),
    repeats: int = typer.Option(
        2, "--repeats", min=0, max=20, help="Runs again at each end of the interval, for the noise."
    ),
    step_time: float = duration_option(
        "10s",
        "--step-time",
        "Measured time of each run at least (longer when the gate needs more samples at its rate).",
        low=1,
    ),
    warmup: float = duration_option(
        "2s", "--warmup", "Of each run: sent first, left out of its figures."
    ),
    cooldown: float = duration_option(
        "5s",
        "--cooldown",
        "Pause after a run that broke the SLO, for the target's queues to drain.",
    ),
    max_time: float = duration_option(
        "15m",
        "--max-time",
        "The whole search's bound: no run is started that would end after it.",
        low=1,
    ),
    processes: str = typer.Option(
        "auto", "--processes", help="Locust processes: a number, or auto (one per core)."
    ),
    users: int | None = typer.Option(
        None,
        "--users",
        "-u",
        min=1,
        help="Users of each run (default: one per task/s of its rate, at least 10, at most 1000).",
    ),
    metrics_url: str | None = typer.Option(
        None,
        "--metrics-url",
        help="The target's Prometheus page, read each second to name what "
        "saturated first (default: HOST/metrics; `none` reads nothing).",
    ),
    target_cores: float | None = typer.Option(
        None,
        "--target-cores",
        min=0.1,
        help="Cores the target may use, for its CPU signal (default: this machine's).",
    ),
    allow_host: list[str] = typer.Option(
        [], "--allow-host", help="A non-loopback host you allow load to be sent to."
    ),
    report_dir: Path = typer.Option(
        Path("capacity-report"), "--report-dir", help="Where report.json and report.html go."
    ),
    write: Path | None = typer.Option(
        None,
        "--write",
        metavar="PLAN",
        help="Set the service's capacity.per_replica_rps in "
        "PLAN to the interval's low end, with a comment (date, commit, interval). Without it, "
        "the change is printed as a diff.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print report.json on stdout."),
) -> None:
    """Find the highest request rate the target sustains within the SLO.

    Open-model steps growing by --factor until one breaks the SLO, then bisection and
    repeats; reports the sustainable rate as an interval, the latency curve, the knee and
    which resource saturated first. Exit 0 found, 4 inconclusive (the generator was the
    bottleneck, the SLO held up to --max-rate or broke at --start-rate, too few samples).

    Example: scalectl loadtest capacity browse -H http://127.0.0.1:18000 --plan p.yml --write p.yml
    """
    from scalectl.loadtest import capacity, capacityreport, capacityrun, saturation
    from scalectl.loadtest import settings as settings_mod
    from scalectl.loadtest.cpu import usable_cores
    from scalectl.loadtest.scenarios import resolve_locustfile
    from scalectl.loadtest.target import check_host
    from scalectl.netguard import url_problem

    output = output_of(ctx, json_out)
    plan_path = plan or write
    gate, service_name = _gate(plan_path, service, p95_ms, max_error_rate)
    settings = capacity.Settings(
        start_rate=start_rate,
        max_rate=max_rate,
        factor=factor,
        probes=probes,
        resolution=resolution,
        repeats=repeats,
        step_seconds=step_time,
        warmup_seconds=warmup,
        cooldown_seconds=cooldown,
        max_seconds=max_time,
    )
    target = host or settings_mod.stack_url()
    check_host(target, tuple(allow_host))
    page = metrics_url or target.rstrip("/") + "/metrics"
    if page != "none":
        problem = url_problem(page, tuple(allow_host))
        if problem:
            raise InputError(f"--metrics-url {page}: {problem}")
    env = {**output.environ, **settings_mod.stack_keys_env(output.environ, target, replicas=True)}
    if locustfile is None:
        env[capacityrun.PATH_ENV] = path
    runs_on = capacityrun.Target(
        locustfile=capacityrun.GET_PATH if locustfile is None else resolve_locustfile(locustfile),
        host=target,
        processes=settings_mod.process_count(processes),
        env=env,
        users=users,
        metrics_url=None if page == "none" else page,
    )
    output.info(
        f"loadtest capacity -> {target}: hold {gate.label()} ({gate.source}); steps from "
        f"{start_rate:g}/s ×{factor:g} up to {max_rate:g}/s, at most {max_time:g}s in all"
    )
    scraper = saturation.Scraper(runs_on.metrics_url) if runs_on.metrics_url else None
    try:
        probe = capacityrun.probe(
            runs_on, gate, warmup, scraper, told=lambda run: _told(output, run, gate)
        )
        search = capacity.search(settings, gate, probe)
    finally:
        if scraper is not None:
            scraper.close()
    cores = target_cores or float(usable_cores())
    first = saturation.first_saturated(
        [(r.rate, r.saturation) for r in search.runs], saturation.limits(cores)
    )
    meta: dict[str, Any] = {
        "host": target,
        "scenario": locustfile or f"GET {path}",
        "service": service_name,
        "plan": str(plan_path) if plan_path else None,
        "metrics_url": runs_on.metrics_url,
        "target_cores": cores,
        "processes": runs_on.processes,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    data = capacityreport.report_data(search, first, meta)
    written = capacityreport.write_reports(report_dir, data)
    if output.json_mode:
        output.stdout.write(written[0].read_text())
    else:
        _print_result(output, data, written)
    if search.verdict == "pass" and plan_path is not None and service_name is not None:
        _plan_change(output, plan_path, service_name, search, gate, write is not None)
    elif write is not None:
        output.warn(f"{write} not changed: the search found no interval to write")
    if any(r.interrupted for r in search.runs):
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    if search.verdict != "pass":
        raise Inconclusive("inconclusive: " + "; ".join(search.reasons))


def _gate(
    plan_path: Path | None, service: str | None, p95_ms: float | None, errors: float | None
) -> tuple[Any, str | None]:
    """The SLO to hold and the plan's service, from the plan or the options."""
    from scalectl.loadtest.capacity import Gate, gate_from_plan

    if plan_path is None:
        if service is not None:
            raise InputError("--service needs --plan (or --write)")
        if p95_ms is None:
            raise InputError("give --plan (its SLO) or --p95-ms")
        return Gate("p95_ms", p95_ms, 0.01 if errors is None else errors, "--p95-ms"), None
    from scalectl.plan.load import load_plan

    loaded = load_plan(plan_path).plan
    names = list(loaded.services)
    if service is None:
        if len(names) != 1:
            raise InputError(f"{plan_path} has services {', '.join(names)}: give --service")
        service = names[0]
    elif service not in loaded.services:
        raise InputError(f"{plan_path}: no service '{service}' (services: {', '.join(names)})")
    return gate_from_plan(loaded.slo, p95_ms, errors, str(plan_path)), service


def _told(output: Output, run: Any, gate: Any) -> None:
    """One line per finished run."""
    result = {"pass": "held", "fail": "broke"}.get(run.verdict, "inconclusive")
    gated = "n/a" if run.gated is None else f"{run.gated:.1f} ms"
    output.info(
        f"{run.phase} {run.rate:g}/s ({run.seconds}s): {result}; "
        f"{gate.metric.removesuffix('_ms')} {gated}, {run.error_rate:.2%} errors, "
        f"{run.requests} requests, {run.achieved_rps:.1f}/s started"
    )


def _print_result(output: Output, data: dict[str, Any], written: list[Path]) -> None:
    """The curve as a table, then the interval, the knee and what saturated first."""
    from rich.table import Table

    table = Table(title="Latency against rate", title_justify="left")
    columns = (
        "rate/s",
        "achieved/s",
        "runs",
        "held",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "gated ms",
        "errors",
    )
    for col in columns:
        table.add_column(col, justify="right")

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    for row in data["curve"]:
        spread = (
            f" ({ms(row['gated_min_ms'])}-{ms(row['gated_max_ms'])})" if row["runs"] > 1 else ""
        )
        table.add_row(
            f"{row['rate']:g}",
            f"{row['achieved_rps']:.1f}",
            str(row["runs"]),
            str(row["held"]),
            ms(row["p50_ms"]),
            ms(row["p95_ms"]),
            ms(row["p99_ms"]),
            ms(row["gated_ms"]) + spread,
            f"{row['error_rate']:.2%}",
        )
    output.console.print(table)
    low, high = data["sustainable_rps"]["low"], data["sustainable_rps"]["high"]
    knee = data["knee"]
    first = data["saturated_first"]
    if data["verdict"] == "pass":
        output.info(f"sustainable rate: {low:g} to {high:g} requests/s ({data['gate']['source']})")
    for reason in data["reasons"]:
        output.warn(reason)
    output.info(
        "knee: " + (f"{knee['rate']:g}/s ({knee['gated_ms']:.1f} ms)" if knee else "not found")
    )
    at = f" at {first['rate']:g}/s" if first["rate"] is not None else ""
    output.info(f"saturated first: {first['resource']}{at} ({'; '.join(first['detail'])})")
    output.info(f"verdict: {data['verdict']}; reports in {', '.join(map(str, written))}")


def _plan_change(
    output: Output, plan_path: Path, service: str, search: Any, gate: Any, write: bool
) -> None:
    """Write the interval's low end into the plan (`write`), or print the diff it would be."""
    from scalectl.files import write_file
    from scalectl.plan import measured

    text, located = measured.read_plan(plan_path)
    comment = measured.measurement_comment(
        search.low, search.high, gate.label(), dt.date.today(), measured.commit_of(plan_path.parent)
    )
    new = measured.with_capacity(
        text, located, service, measured.written_value(search.low), comment
    )
    if write:
        write_file(plan_path, new.encode("utf-8"))
        output.info(
            f"wrote services.{service}.capacity.per_replica_rps "
            f"{measured.written_value(search.low)} to {plan_path}"
        )
    elif not output.json_mode:
        output.info(f"with --write {plan_path}:")
        output.stdout.write(measured.diff(plan_path, text, new))
