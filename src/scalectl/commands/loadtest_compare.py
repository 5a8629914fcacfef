"""`scalectl loadtest compare` and `scalectl loadtest history`: reports of finished runs
read back, two sides compared with intervals, or many runs as a trend."""

from __future__ import annotations

from pathlib import Path

import typer

from scalectl.commands.common import output_of
from scalectl.commands.loadtest_tables import print_comparison, print_history


def compare_command(
    ctx: typer.Context,
    base: str = typer.Argument(
        ...,
        metavar="BASE",
        help="report.json or report dir; several repeat runs comma-separated or a glob.",
    ),
    new: str = typer.Argument(..., metavar="NEW", help="The same for the run(s) to judge."),
    tolerance: str = typer.Option(
        "10%",
        "--tolerance",
        metavar="PCT",
        help="Relative change allowed beyond BASE's range: 10% or 0.1.",
    ),
    min_delta_ms: float = typer.Option(
        2.0, "--min-delta-ms", min=0, help="A latency must also move by more than this (ms)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Compare two load-test reports per endpoint: p50/p95/p99, error rate and rps.

    Exit 0 no regression, 5 regressed, 2 bad input. With repeat runs on a side, a metric
    regressed only when NEW's median is worse than BASE's worst run by the tolerance. With
    histograms.json beside every report, each row also gets NEW − BASE with a 95% interval
    (a bootstrap over the per-second histograms), and must regress by it too.

    Example: scalectl loadtest compare main-report 'pr-report-*' --tolerance 10%
    """
    from scalectl.loadtest import compare as compare_mod

    output = output_of(ctx, json_out)
    fraction = compare_mod.parse_tolerance(tolerance)
    sides = [
        [compare_mod.load_report(p) for p in compare_mod.report_paths(spec)] for spec in (base, new)
    ]
    result = compare_mod.compare(sides[0], sides[1], tolerance=fraction, min_delta_ms=min_delta_ms)
    if output.json_mode:
        output.emit_json(result.to_json())
    else:
        print_comparison(output, result)
    regressed = result.regressed
    if regressed:
        raise compare_mod.Regressed(
            f"{len(regressed)} metric{'s' if len(regressed) != 1 else ''} regressed: "
            + ", ".join(f"{r.endpoint} {r.metric}" for r in regressed)
        )


def history_command(
    ctx: typer.Context,
    reports: list[str] = typer.Argument(
        ...,
        metavar="REPORTS...",
        help="report.json files, report dirs, globs, or a directory of report dirs.",
    ),
    endpoint: str = typer.Option(
        "Aggregated", "--endpoint", "-e", help="METHOD name of the endpoint to follow."
    ),
    html: Path | None = typer.Option(
        None, "--html", help="Also write a page with charts across the runs to this file."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the history as JSON."),
) -> None:
    """Many load-test runs in time order: p50/p95/p99, throughput and error rate per run.

    Each run's change from the one before, and the latest against the median of the
    others; --html writes the same with charts. At most 500 reports. Exit 0, 2 bad input.

    Example: scalectl loadtest history reports/ --html history.html
    """
    from scalectl.files import write_file
    from scalectl.loadtest.history import history_paths, load_history
    from scalectl.loadtest.html import history_html

    output = output_of(ctx, json_out)
    result = load_history(history_paths(reports), endpoint)
    if html is not None:
        write_file(html, history_html(result.to_json()).encode("utf-8"))
    if output.json_mode:
        output.emit_json(result.to_json())
        return
    print_history(output, result)
    if html is not None:
        output.info(f"charts in {html}")
