"""drill.json, junit.xml and report.html of a `scalectl drill` run (docs/drills.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scalectl import junit
from scalectl.drill.model import DrillResult
from scalectl.files import write_file

REPORT_VERSION = 1


def _iso(ts: float | None) -> str | None:
    return (
        None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    )


def drill_data(result: DrillResult) -> dict[str, Any]:
    """One drill's result as drill.json holds it: times relative to its start."""

    def rel(ts: float | None) -> float | None:
        return None if ts is None else round(ts - result.started_at, 2)

    return {
        "name": result.name,
        "description": result.description,
        "verdict": result.verdict,
        "reasons": result.reasons,
        "started_at": _iso(result.started_at),
        "ended_at": _iso(result.ended_at),
        "fault_start_s": rel(result.fault_start),
        "fault_end_s": rel(result.fault_end),
        "figures": [f.to_json() for f in result.figures],
        "events": [{"t": rel(e.at), "text": e.text} for e in result.events],
        "timeline": [
            {
                "t": s.t,
                "phase": s.phase,
                "requests": s.requests,
                "failures": s.failures,
                "rps": float(s.requests),
                "p95_ms": s.p95_ms,
            }
            for s in result.seconds
        ],
        "probes": [
            {
                "t": rel(p.at),
                "url": p.url,
                "status": p.status,
                "health": p.health,
                "ms": round(p.millis, 1),
                "error": p.error,
            }
            for p in result.samples
        ],
        "errors": [
            {"message": k, "count": v}
            for k, v in sorted(result.errors.items(), key=lambda i: (-i[1], i[0]))[:10]
        ],
    }


def report_data(results: list[DrillResult]) -> dict[str, Any]:
    """drill.json for a run: every drill's data and the overall verdict (fail, else
    inconclusive, else pass)."""
    verdicts = [r.verdict for r in results]
    overall = (
        "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts else "pass"
    )
    return {
        "version": REPORT_VERSION,
        "verdict": overall,
        "drills": [drill_data(r) for r in results],
    }


def junit_xml(data: dict[str, Any]) -> str:
    """junit.xml for a run: a suite per drill, a test case per gated figure."""
    suites = []
    for drill in data["drills"]:
        gated = [f for f in drill["figures"] if f["status"] != "info"]
        classname = f"scalectl.drill.{drill['name']}"
        cases = []
        for f in gated:
            numbers = f"{f['value']} {f['unit']}, threshold {f['comparator']} {f['threshold']}"
            failure = skipped = None
            if f["status"] == "fail":
                text = f"{f['name']}: {numbers} ({f['detail']})"
                failure = junit.Failure(numbers, "DrillFailed", text)
            elif f["status"] == "inconclusive":
                skipped = f"inconclusive: {numbers}"
            cases.append(junit.Case(classname, f["name"], failure=failure, skipped=skipped))
        if not gated:
            cases.append(junit.Case(classname, "ran"))
        suites.append(junit.Suite(f"drill {drill['name']}", cases, drill["started_at"] or ""))
    return junit.to_xml("scalectl drill", suites)


def report_html(data: dict[str, Any]) -> str:
    """report.html for a run: one self-contained page with a chart per drill."""
    from markupsafe import Markup

    from scalectl.loadtest.html import chart, fmt, script_json
    from scalectl.templating import environment

    charts = {
        d["name"]: [
            chart(f"chart-{d['name']}-throughput", "Requests", "per second", d["timeline"],
                  [("requests", "#2563eb", "rps"), ("failures", "#dc2626", "failures")]),
            chart(f"chart-{d['name']}-latency", "Latency p95", "ms", d["timeline"],
                  [("p95", "#d97706", "p95_ms")]),
        ]
        for d in data["drills"]
    }  # fmt: skip
    template = environment().get_template("drill/report.html.j2")
    text: str = template.render(
        report=data, charts=charts, data_json=Markup(script_json(data)), fmt=fmt
    )
    return text


def write_reports(
    report_dir: Path, results: list[DrillResult]
) -> tuple[dict[str, Any], list[Path]]:
    """Write drill.json, junit.xml and report.html into `report_dir` (created); the
    report data and the paths written. OSError when the directory cannot be written."""
    data = report_data(results)
    report_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "drill.json": json.dumps(data, indent=2, allow_nan=False) + "\n",
        "junit.xml": junit_xml(data),
        "report.html": report_html(data),
    }
    written = []
    for name, text in files.items():
        write_file(report_dir / name, text.encode("utf-8"))
        written.append(report_dir / name)
    return data, written
