"""What `scalectl loadtest capacity` writes: report.json (its fields are in docs/loadtest.md,
"Capacity") and report.html with the latency-against-rate chart, drawn the way
loadtest/html.py draws a run's charts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scalectl.files import write_file
from scalectl.loadtest.capacity import Search
from scalectl.loadtest.html import LATENCY_LINES, chart, fmt, pct, script_json


def report_data(
    search: Search,
    saturated: tuple[str, float | None, list[str]],
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    """report.json's dict: verdict and reasons, the gate, the interval, the knee, which
    resource saturated first, the curve (one row per rate) and every run in order."""
    settings = search.settings
    first, at_rate, detail = saturated
    return {
        "version": 1,
        "kind": "capacity",
        "verdict": search.verdict,
        "reasons": search.reasons,
        "meta": dict(meta),
        "gate": {
            "metric": search.gate.metric,
            "threshold_ms": search.gate.threshold_ms,
            "max_error_rate": search.gate.max_error_rate,
            "source": search.gate.source,
            "samples": search.gate.samples(),
        },
        "settings": {
            "start_rate": settings.start_rate,
            "max_rate": settings.max_rate,
            "factor": settings.factor,
            "probes": settings.probes,
            "resolution": settings.resolution,
            "repeats": settings.repeats,
            "step_seconds": settings.step_seconds,
            "warmup_seconds": settings.warmup_seconds,
            "cooldown_seconds": settings.cooldown_seconds,
            "max_seconds": settings.max_seconds,
        },
        "sustainable_rps": {"low": search.low, "high": search.high},
        "knee": search.knee(),
        "saturated_first": {"resource": first, "rate": at_rate, "detail": detail},
        "curve": search.curve(),
        "runs": [r.to_json() for r in search.runs],
    }


def write_reports(report_dir: Path, data: Mapping[str, Any]) -> list[Path]:
    """report.json and report.html into `report_dir` (made if missing); returns the paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = [report_dir / "report.json", report_dir / "report.html"]
    write_file(paths[0], (json.dumps(data, indent=2) + "\n").encode())
    write_file(paths[1], report_html(data).encode())
    return paths


def report_html(data: Mapping[str, Any]) -> str:
    """report.html from report_data()'s dict: the chart of latency against rate, with the
    gate's threshold drawn as a line, and the tables."""
    from markupsafe import Markup

    from scalectl.templating import environment

    threshold = data["gate"]["threshold_ms"]
    rows = [{**row, "t": row["rate"], "threshold": threshold} for row in data["curve"]]
    curve_chart = chart(
        "chart-capacity",
        "Latency against rate",
        "ms",
        rows,
        [*LATENCY_LINES, ("SLO", "#6b7280", "threshold")],
        x_title="requests/s asked",
        x_label="requests per second asked",
    )
    template = environment().get_template("loadtest/capacity.html.j2")
    text: str = template.render(
        report=data,
        charts=[curve_chart],
        data_json=Markup(script_json(data)),
        fmt=fmt,
        pct=pct,
    )
    return text
