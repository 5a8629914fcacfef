"""`scalectl loadtest`: Locust scenarios in child processes, HDR-measured, gated on SLOs."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from scalectl.commands.common import default_group, duration_option, output_of
from scalectl.commands.loadtest_capacity import capacity_command
from scalectl.commands.loadtest_compare import compare_command, history_command
from scalectl.commands.loadtest_tables import print_run
from scalectl.errors import CheckFailed, ExitCode, Inconclusive, InputError
from scalectl.output import Output

app = typer.Typer(
    cls=default_group("run"),
    help="Run a Locust scenario against a deployed app and gate on SLOs (run is the default).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("run")
def run_command(
    ctx: typer.Context,
    locustfile: str = typer.Argument(
        ..., help="A scenario name (browse, mix, ...) or a locustfile."
    ),
    locust_args: list[str] | None = typer.Argument(
        None,
        metavar="-- LOCUST_ARGS",
        help="After --: given to Locust as they are, such as the locustfile's own options "
        "(--my-argument foo) or user class names; not the options scalectl sets itself.",
        show_default=False,
    ),
    host: str | None = typer.Option(
        None, "--host", "-H", help="Target URL (default: the running `scalectl stack`)."
    ),
    users: int | None = typer.Option(
        None,
        "--users",
        "-u",
        min=1,
        help="Peak concurrent users (default 10; with --rate or --rate-stages: the (peak) "
        "rate, at least 10, at most 1000).",
    ),
    spawn_rate: float | None = typer.Option(
        None,
        "--spawn-rate",
        "-r",
        min=0.1,
        help="Users started/s (default 10; with --rate: all users within a second).",
    ),
    run_time: str | None = typer.Option(
        None,
        "--run-time",
        "-t",
        help="How long, warm-up included: 30s, 5m, 1h30m (required without a TTY), or auto "
        "with --plan or --slo: until every gated percentile has its samples (at most "
        "--max-run-time).",
    ),
    warmup: str | None = typer.Option(
        None,
        "--warmup",
        help="Send load for this long first (10s, 1m) but leave it out of every SLO and "
        "statistic; part of --run-time. Default: the SLO file's or plan's warmup, else none.",
    ),
    max_run_time: float | None = duration_option(
        None,
        "--max-run-time",
        "A locustfile with a LoadTestShape ends when its shape does (-u, -r, -t do not "
        "apply, as in Locust); it is stopped after this long (default 2h), its reports "
        "written and the run inconclusive. Without -t, also a run's length.",
        low=1,
    ),
    stop_timeout: float | None = duration_option(
        None,
        "--stop-timeout",
        "Let each user finish its current task for up to this long (10s) once the run time "
        "is up, as Locust's --stop-timeout. Default: Locust's, stop at once.",
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        min=1,
        max=65535,
        help="Serve live counters and latency quantiles on http://HOST:PORT/metrics while the "
        "run goes on, for Prometheus (docs/loadtest.md, 'Live metrics').",
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1", "--metrics-host", help="The address --metrics-port listens on."
    ),
    tags: list[str] = typer.Option([], "--tags", help="Only tasks with these Locust tags."),
    slo: Path | None = typer.Option(None, "--slo", help="An SLO file to gate on."),
    plan: Path | None = typer.Option(
        None, "--plan", help="Gate on this capacity plan's slo section."
    ),
    report_dir: Path = typer.Option(
        Path("loadtest-report"), "--report-dir", help="Where report.json, junit.xml, ... go."
    ),
    processes: str = typer.Option(
        "auto", "--processes", help="Locust processes: a number, or auto (one per core)."
    ),
    allow_host: list[str] = typer.Option(
        [], "--allow-host", help="A non-loopback host you allow load to be sent to."
    ),
    rate: float | None = typer.Option(
        None,
        "--rate",
        min=0.1,
        help="Open model: start this many tasks per second in total, whatever the response "
        "times; latency counts from each task's intended start (coordinated omission).",
    ),
    rate_stages: str | None = typer.Option(
        None,
        "--rate-stages",
        metavar="T:R,...",
        help="Open model with a ramping rate: TIME:RATE points, linear between them, such as "
        "0s:100,60s:1000,150s:0; without -t the run lasts until the last point (at most "
        "--max-run-time). Default: the SLO file's rate_stages.",
    ),
    max_late_share: float | None = typer.Option(
        None,
        "--max-late-share",
        min=0.0,
        max=1.0,
        help="Open model: the share of arrivals that may start more than 10 ms late (or "
        "never) before the run is inconclusive. The default, 0.25, allows a shared "
        "machine's scheduling noise; on a dedicated generator 0.05 is a stricter gate.",
    ),
    master: bool = typer.Option(
        False, "--master", help="Be a Locust master for workers on other machines (or shells)."
    ),
    expect_workers: int = typer.Option(
        1, "--expect-workers", min=1, help="--master: start once this many workers connected."
    ),
    master_bind_host: str = typer.Option(
        "*", "--master-bind-host", help="--master: the address workers connect to (* for all)."
    ),
    master_bind_port: int = typer.Option(
        5557, "--master-bind-port", min=1, max=65535, help="--master: the port workers use."
    ),
    worker: bool = typer.Option(
        False, "--worker", help="Be a Locust worker of a `scalectl loadtest --master`."
    ),
    master_host: str = typer.Option(
        "127.0.0.1", "--master-host", help="--worker: where the master listens."
    ),
    master_port: int = typer.Option(
        5557, "--master-port", min=1, max=65535, help="--worker: the master's port."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print report.json on stdout."),
) -> None:
    """Run a load test in Locust child processes and gate the result on SLOs.

    Exit 0 pass, 1 an SLO breached, 4 inconclusive (saturated generator, too few samples,
    a --rate missed by more than 10%).

    Example: scalectl loadtest browse -u 20 -t 30s --plan examples/reference-app.yaml
    """
    from scalectl.commands.loadtest_progress import progress_for
    from scalectl.loadtest import runlength, runner
    from scalectl.loadtest import settings as settings_mod
    from scalectl.loadtest import slo as slo_mod
    from scalectl.loadtest.evaluation import evaluate
    from scalectl.loadtest.reports import run_meta, write_reports
    from scalectl.loadtest.scenarios import resolve_locustfile
    from scalectl.loadtest.target import check_host
    from scalectl.loadtest.verdict import judge
    from scalectl.loadtest.warmup import resolve_warmup

    output = output_of(ctx, json_out)
    if slo and plan:
        raise InputError("give --slo or --plan, not both")
    if master and worker:
        raise InputError("give --master or --worker, not both")
    count = settings_mod.process_count(processes)
    if worker:
        seconds = settings_mod.run_seconds(
            run_time, interactive=output.interactive, max_run_time=max_run_time
        )
        path = resolve_locustfile(locustfile)
        extra = settings_mod.locust_arguments(locust_args)
        _worker(output, path, master_host, master_port, count, seconds, extra, ctx)
        return
    spec = settings_mod.load_spec(slo, plan)
    stages = settings_mod.rate_stages(rate_stages, rate, spec, str(slo))
    seconds = settings_mod.run_seconds(
        run_time, interactive=output.interactive, max_run_time=max_run_time, stages=stages
    )
    path = resolve_locustfile(locustfile)
    extra = settings_mod.locust_arguments(locust_args)
    warmup_seconds = resolve_warmup(warmup, spec, str(slo or plan), seconds)
    target = host or settings_mod.stack_url()
    check_host(target, tuple(allow_host))
    users, spawn_rate = settings_mod.load_shape(
        users, spawn_rate, stages.peak if stages is not None else rate
    )

    config = runner.RunConfig(
        locustfile=path,
        host=target,
        users=users,
        spawn_rate=spawn_rate,
        run_time_seconds=seconds,
        processes=count,
        tags=tuple(tags),
        # The environment the command was given, for the scenario, plus the local stack's
        # API keys when the target is that stack.
        env={**output.environ, **settings_mod.stack_keys_env(output.environ, target)},
        rate=rate,
        master=runner.Distributed(expect_workers, master_bind_host, master_bind_port)
        if master
        else None,
        warmup_seconds=warmup_seconds,
        stop_timeout_seconds=stop_timeout,
        extra_args=extra,
        metrics_address=None if metrics_port is None else f"{metrics_host}:{metrics_port}",
        max_run_time_seconds=runner.DEFAULT_MAX_RUN_SECONDS
        if max_run_time is None
        else max(1, math.ceil(max_run_time)),
        rate_stages=stages,
        plugin_slo=spec.for_plugin() if spec else "",
    )
    model = f"open model at {rate:g}/s over " if rate else ""
    if stages is not None:
        model = f"open model ramping {stages.label()} (per second) over "
        if stages.end > seconds:
            output.warn(
                f"--rate-stages runs to {stages.end:g}s but the run lasts {seconds}s: the "
                "stages after that are not run"
            )
    generators = (
        f"a master for {expect_workers} worker(s) on {master_bind_host}:{master_bind_port}"
        if master
        else f"{count} Locust process(es)"
    )
    length = f"{seconds}s" + (f" ({warmup_seconds:g}s warm-up first)" if warmup_seconds else "")
    output.info(
        f"loadtest {path.name} -> {target}: {model}{users} users, {spawn_rate:g}/s, "
        f"{length}, {generators}"
    )
    abort = settings_mod.abort_check(spec)
    auto = None
    if run_time == runlength.AUTO:
        auto = runlength.auto_stop(spec, warmup_seconds)
        output.info(f"-t auto: until every gate has its samples, at most {seconds}s")
    else:
        warning = settings_mod.run_length_warning(
            spec,
            rate if stages is None else stages.mean(warmup_seconds, seconds),
            settings_mod.design_rate(plan),
            seconds - warmup_seconds,
        )
        if warning:
            output.warn(warning)
    with progress_for(output, seconds, warmup_seconds) as progress:
        outcome = runner.run(
            config,
            progress=progress if auto is None else runlength.then(progress, auto.observe),
            abort_check=abort,
            should_stop=auto,
        )
    results = outcome.results
    if outcome.shape is not None and not outcome.shape.common_options:
        output.info(
            f"load shape {outcome.shape.name}: it set users and length (-u, -r, -t did not "
            f"apply); it ran {results.run_duration:.1f}s"
        )

    evaluation = evaluate(spec or slo_mod.SloSpec(), results)
    judged = judge(
        outcome,
        evaluation,
        rate=rate,
        warmup_seconds=warmup_seconds,
        stages=stages,
        max_late_share=max_late_share,
    )
    verdict, reasons, generator = judged.verdict, judged.reasons, judged.generator

    written = write_reports(
        report_dir,
        results,
        evaluation,
        generator,
        run_meta(config, outcome.shape, results, auto=auto is not None),
        verdict=verdict,
        reasons=reasons,
        environ=output.environ,
    )
    if output.json_mode:
        output.stdout.write((report_dir / "report.json").read_text())
    else:
        print_run(output, results, evaluation, verdict, reasons, written)
    if outcome.interrupted:
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    if verdict == "fail":
        raise CheckFailed("SLO breached" + (f" ({'; '.join(reasons)})" if reasons else ""))
    if verdict == "inconclusive":
        raise Inconclusive("inconclusive: " + ("; ".join(reasons) or "too few samples"))


def _worker(
    output: Output,
    path: Path,
    master_host: str,
    master_port: int,
    processes: int,
    seconds: int,
    extra: tuple[str, ...],
    ctx: typer.Context,
) -> None:
    """`--worker`: the master decides host, users, rate and run time, and writes the reports;
    options that would be ignored here are refused rather than silently dropped."""
    from scalectl.loadtest import runner
    from scalectl.loadtest import settings as settings_mod

    given = [
        f"--{name.replace('_', '-')}"
        for name in (
            "host",
            "users",
            "spawn_rate",
            "slo",
            "plan",
            "rate",
            "rate_stages",
            "tags",
            "warmup",
            "stop_timeout",
            "max_run_time",
            "metrics_port",
            "max_late_share",
        )
        if ctx.params.get(name) not in (None, [], ())
    ]
    if given:
        raise InputError(
            f"--worker takes {', '.join(given)} from its master: give them to "
            "`scalectl loadtest --master` instead"
        )
    output.info(
        f"loadtest worker {path.name}: {processes} Locust process(es) for the master at "
        f"{master_host}:{master_port} (at most {seconds}s)"
    )
    code = runner.run_worker(
        path, master_host, master_port, processes, settings_mod.worker_seconds(seconds), extra
    )
    output.info(f"loadtest worker: Locust exited with {code}")
    if code != 0:
        raise CheckFailed(f"the Locust worker exited with {code}")


@app.command("list")
def list_command(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print the scenarios as JSON."),
) -> None:
    """List the scenarios that ship with scalectl and what each sends.

    Example: scalectl loadtest list
    """
    from scalectl.loadtest.scenarios import scenarios

    output = output_of(ctx, json_out)
    found = scenarios()
    if output.json_mode:
        output.emit_json({"scenarios": [{"name": n, "summary": s} for n, s in found.items()]})
        return
    for name, summary in found.items():
        output.console.print(f"{name:<10} {summary}", markup=False)


# compare and history live in loadtest_compare; registered here, after the run commands.
app.command("compare")(compare_command)
app.command("history")(history_command)
app.command("capacity")(capacity_command)
