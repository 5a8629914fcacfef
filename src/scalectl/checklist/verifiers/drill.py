"""`drill`: a fault drill as evidence (`scalectl drill`, docs/drills.md): run it now against
the local stack, or read the latest drill.json and require it passed recently.

The shipped deploy checklist uses the graceful-shutdown and rolling-restart drills: they
measure what users saw through the balancer, not only that one instance drained."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Literal

from pydantic import Field

from scalectl.checklist.model import (
    Duration,
    VerifierOutcome,
    failed,
    format_duration,
    passed,
    skipped,
)
from scalectl.checklist.verifiers.base import Context, Params, Verifier
from scalectl.errors import InputError
from scalectl.files import read_json

DrillName = Literal[
    "worker-kill",
    "rolling-restart",
    "graceful-shutdown",
    "redis-outage",
    "postgres-outage",
    "slow-redis",
    "slow-postgres",
    "queue-worker-kill",
    "overload",
]


class DrillParams(Params):
    """Parameters of the `drill` verifier: which drill, run now or read from a report, and the
    limits of either."""

    name: DrillName
    run: bool = True  # run it now; false: the latest drill.json in report_dir is the evidence
    report_dir: str = "drill-report"
    max_age: Duration = 7 * 86400.0  # run: false only
    before: float = Field(3.0, gt=0, le=600)  # seconds of load around the fault (run: true)
    after: float = Field(3.0, gt=0, le=600)
    max_failed: int = Field(0, ge=0, le=1_000_000)  # as `scalectl drill --max-failed`


def _figure_lines(drill: dict[str, Any]) -> list[str]:
    lines = []
    try:
        for f in drill.get("figures", []):
            limit = f" ({f['comparator']} {f['threshold']:g})" if f.get("comparator") else ""
            lines.append(
                f"  {f['status']}: {f['name']} {f['value']} {f['unit']}{limit} {f['detail']}"
            )
    except (AttributeError, KeyError, TypeError, ValueError):
        # drill.json is read back from disk: a hand-edited one loses its figures, not the run
        lines.append("  (figures unreadable)")
    return lines


def check_drill(params: DrillParams, ctx: Context) -> VerifierOutcome:
    """The `drill` item: run the drill now against the local stack (run: true), or read the
    latest drill.json in report_dir; it must pass (and be no older than max_age). Raises
    CheckFailed (or another ScalectlError), which fails the item, when no stack runs for a
    drill run now."""
    directory = ctx.path(params.report_dir)
    if params.run and ctx.remote_target() is not None:
        return skipped()  # a drill faults and loads the local stack, never a deployment
    if params.run:
        return _run(params, ctx)
    # `scalectl drill ... --report-dir DIR` writes DIR/drill.json; this verifier's own runs
    # write DIR/<name>/drill.json, so two drills in one checklist keep both reports.
    path = directory / params.name / "drill.json"
    if not path.exists():
        path = directory / "drill.json"
    if not path.exists():
        return failed(f"{path}: no drill report (run: scalectl drill {params.name})")
    try:
        data = read_json(path)
    except InputError as exc:
        return failed(f"unreadable drill report: {exc}")
    drills = data.get("drills") if isinstance(data, dict) else None
    if not isinstance(drills, list):
        return failed(f"{path}: not a scalectl drill.json (no drills list)")
    found = [d for d in drills if isinstance(d, dict) and d.get("name") == params.name]
    if not found:
        return failed(f"{path}: has no {params.name} drill (run: scalectl drill {params.name})")
    drill = found[-1]
    lines = [f"{path}: {params.name} {drill.get('verdict')}", *_figure_lines(drill)]
    try:
        started = datetime.datetime.fromisoformat(str(drill.get("started_at"))).timestamp()
    except ValueError:
        return failed(f"{path}: {params.name} has no valid started_at")
    age = ctx.now() - started
    lines.append(f"ran {format_duration(age)} ago (max age {format_duration(params.max_age)})")
    if drill.get("verdict") != "pass":
        return failed(*lines, f"the drill's verdict is {drill.get('verdict')}, not pass")
    if age > params.max_age:
        return failed(*lines, f"the drill report is stale: {format_duration(age)} old")
    return passed(*lines)


def _run(params: DrillParams, ctx: Context) -> VerifierOutcome:
    try:
        from scalectl.drill import catalog, engine
        from scalectl.drill.kinds.base import DrillGates
        from scalectl.drill.reports import write_reports
    except ImportError as exc:  # the drills need the loadtest extra (Locust)
        return failed(f"cannot run the {params.name} drill: {exc} (pip install scalectl[loadtest])")
    state = ctx.stack()
    gates = catalog.plan_gates(state, DrillGates(max_failed=params.max_failed))
    spec = catalog.DRILLS[params.name](gates)
    spec = dataclasses.replace(spec, before_seconds=params.before, after_seconds=params.after)
    ctx.progress(f"running the {params.name} drill against {ctx.state_dir}")
    result = engine.run(
        spec, ctx.state_dir.absolute(), state, environ=ctx.environ, progress=ctx.progress
    )
    data, written = write_reports(ctx.path(params.report_dir) / params.name, [result])
    drill = data["drills"][0]
    lines = [f"{params.name}: {drill['verdict']} (report {written[0]})", *_figure_lines(drill)]
    lines += [f"  reason: {r}" for r in drill["reasons"]]
    return passed(*lines) if drill["verdict"] == "pass" else failed(*lines)


DRILL = Verifier(
    "drill",
    DrillParams,
    check_drill,
    "a `scalectl drill` passed: run now against the local stack (run: true), or read from "
    "the latest drill.json in report_dir no older than max_age",
    live=True,  # it acts on the running stack: a pass is not reused unless valid_for says so
)
