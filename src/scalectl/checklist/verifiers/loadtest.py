"""`loadtest-report`: the latest `scalectl loadtest` report passed and is recent.

Reads report.json (docs/loadtest.md, "report.json (version 1)") on its own terms rather
than through scalectl.loadtest, so a checklist needs no load-testing extras installed."""

from __future__ import annotations

import datetime
from typing import Any

from scalectl.checklist.model import Duration, VerifierOutcome, failed, format_duration, passed
from scalectl.checklist.verifiers.base import Context, Params, Verifier
from scalectl.errors import InputError
from scalectl.files import read_json


class LoadtestParams(Params):
    """Parameters of the `loadtest-report` verifier: the report directory and the oldest report
    accepted."""

    report_dir: str | None = None  # default: --report-dir (loadtest-report)
    max_age: Duration = 7 * 86400.0  # the run must have ended at most this long ago


def _timestamp(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _percent(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else "?"


def check_loadtest(params: LoadtestParams, ctx: Context) -> VerifierOutcome:
    """The `loadtest-report` item: the latest report.json has verdict pass against at least one
    SLO and ended within max_age. A missing or unreadable report fails the item."""
    directory = ctx.path(params.report_dir) if params.report_dir else ctx.report_dir
    path = directory / "report.json"
    if not path.exists():
        return failed(
            f"{path}: no load test report (run: scalectl loadtest mix -t auto --plan PLAN "
            f"--report-dir {directory})"
        )
    try:
        data = read_json(path)
    except InputError as exc:
        return failed(f"unreadable report: {exc}")
    if not isinstance(data, dict) or data.get("version") != 1:
        return failed(f"{path}: not a scalectl report.json (version 1)")
    verdict = data.get("verdict")
    meta: dict[str, Any] = data["meta"] if isinstance(data.get("meta"), dict) else {}
    total: dict[str, Any] = data["total"] if isinstance(data.get("total"), dict) else {}
    slos = [s for s in _list(data.get("slos")) if isinstance(s, dict)]
    good = sum(s.get("status") == "pass" for s in slos)
    lines = [f"{path}: verdict {verdict}, {good} of {len(slos)} SLOs pass"]
    for s in slos:
        if s.get("status") != "pass":
            lines.append(f"  {s.get('status')}: {s.get('name')} (observed {s.get('observed')})")
    lines.extend(f"  reason: {reason}" for reason in _list(data.get("reasons")))
    lines.append(
        f"scenario {meta.get('scenario')}, {total.get('requests', '?')} requests, "
        f"p95 {total.get('p95_ms', '?')} ms, error rate {_percent(total.get('error_rate'))}"
    )
    problems = []
    if verdict != "pass":
        problems.append(f"the run's verdict is {verdict}, not pass")
    if not slos:
        problems.append("the run was gated on no SLO (pass --slo FILE or --plan PLAN)")
    ended = _timestamp(meta.get("ended_at"))
    if ended is None:
        problems.append("meta.ended_at is missing or not an ISO 8601 time")
    else:
        age = ctx.now() - ended
        lines.append(
            f"ended {meta.get('ended_at')}, {format_duration(age)} ago "
            f"(max age {format_duration(params.max_age)})"
        )
        if age > params.max_age:
            problems.append(f"the report is stale: {format_duration(age)} old")
        elif age < -300:
            problems.append("the report ended in the future: check this machine's clock")
    return passed(*lines) if not problems else failed(*lines, *problems)


LOADTEST_REPORT = Verifier(
    "loadtest-report",
    LoadtestParams,
    check_loadtest,
    "the latest `scalectl loadtest` report.json has verdict pass against at least one SLO "
    "and ended within max_age",
)
