"""report.html of one load-test run: one self-contained file, no external resources.

Charts are inline SVG drawn here from report.json's data (report_data()), so the page
needs no JavaScript and no network; the same data is embedded as a JSON blob
(`<script type="application/json" id="report-data">`) for anyone who wants to script it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 28, 36
Y_TICKS = 4
X_TICKS = 6
# The latency lines every latency chart draws: name, colour, key of the row's value.
LATENCY_LINES = (
    ("p50", "#16a34a", "p50_ms"),
    ("p95", "#d97706", "p95_ms"),
    ("p99", "#dc2626", "p99_ms"),
)


@dataclass(frozen=True)
class Series:
    """One line of a chart: its name, colour and SVG polyline segments."""

    name: str
    color: str
    segments: list[str]  # SVG polyline "points", one per run of windows with a value
    count: int  # points drawn


@dataclass(frozen=True)
class Tick:
    """An axis tick: its position in the SVG and its label."""

    pos: float
    label: str


@dataclass(frozen=True)
class Chart:
    """One inline SVG line chart: its series, axis ticks, geometry and the warm-up shading."""

    id: str
    title: str
    unit: str
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    empty: bool
    # x where the measured part starts, when the run had a warm-up (drawn shaded before it)
    warmup_x: float | None = None
    x_title: str = "seconds since start"  # under the x axis
    x_label: str = "time in seconds"  # what a screen reader says the x axis is
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def aria_label(self) -> str:
        """What a screen reader says for the chart."""
        names = ", ".join(s.name for s in self.series)
        return f"{self.title} ({self.unit}) over {self.x_label}: {names}"


def report_html(data: Mapping[str, Any]) -> str:
    """report.html from report_data()'s dict."""
    from markupsafe import Markup

    from scalectl.templating import environment

    template = environment().get_template("loadtest/report.html.j2")
    text: str = template.render(
        report=data,
        charts=charts(data.get("timeseries", [])),
        data_json=Markup(script_json(data)),
        fmt=fmt,
        pct=pct,
    )
    return text


def warmup_end(timeseries: Sequence[Mapping[str, Any]]) -> float | None:
    """Where the warm-up ends: the end of the last second marked warm-up; None without."""
    warm = [float(w["t"]) for w in timeseries if w.get("warmup")]
    return max(warm) + 1 if warm else None


def charts(timeseries: Sequence[Mapping[str, Any]]) -> list[Chart]:
    """The three charts of report.html: throughput with users, latency percentiles, and errors,
    with the warm-up shaded."""
    warm = warmup_end(timeseries)
    return [
        chart(
            "chart-throughput",
            "Throughput",
            "requests/s",
            timeseries,
            [("rps", "#2563eb", "rps"), ("users", "#9ca3af", "users")],
            warmup_until=warm,
        ),
        chart(
            "chart-latency",
            "Latency percentiles",
            "ms",
            timeseries,
            LATENCY_LINES,
            warmup_until=warm,
        ),
        chart(
            "chart-errors",
            "Errors",
            "failures/s",
            timeseries,
            [("failures", "#dc2626", "failures")],
            warmup_until=warm,
        ),
    ]


def chart(
    chart_id: str,
    title: str,
    unit: str,
    timeseries: Sequence[Mapping[str, Any]],
    lines: Sequence[tuple[str, str, str]],
    *,
    warmup_until: float | None = None,
    x_title: str = "seconds since start",
    x_label: str = "time in seconds",
) -> Chart:
    """A line chart of `lines` (name, colour, key) against each window's `t`; the part
    before `warmup_until` (a `t`) is shaded as warm-up. `x_title` and `x_label` name the x
    axis (seconds unless told)."""
    ts = [float(w["t"]) for w in timeseries]
    values = [_number(w.get(key)) for w in timeseries for _, _, key in lines]
    top_value = _nice(max((v for v in values if v is not None), default=0.0))
    t0 = min(ts, default=0.0)
    span = max(max(ts, default=0.0) - t0, 1.0)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP

    def x(t: float) -> float:
        return x0 + (t - t0) / span * (x1 - x0)

    def y(v: float) -> float:
        return y0 - v / top_value * (y0 - y1)

    series = []
    for name, color, key in lines:
        segments: list[list[str]] = [[]]
        count = 0
        for t, w in zip(ts, timeseries, strict=True):
            v = _number(w.get(key))
            if v is None:
                segments.append([])
                continue
            segments[-1].append(f"{x(t):.1f},{y(v):.1f}")
            count += 1
        series.append(Series(name, color, [" ".join(s) for s in segments if s], count))
    step = _nice(span / X_TICKS) if span > X_TICKS else 1.0
    x_ticks = [
        Tick(round(x(t0 + i * step), 1), f"{t0 + i * step:g}") for i in range(int(span / step) + 1)
    ]
    y_ticks = [
        Tick(round(y(top_value * i / Y_TICKS), 1), f"{top_value * i / Y_TICKS:g}")
        for i in range(Y_TICKS + 1)
    ]
    warmup_x = None
    if warmup_until is not None and ts:
        warmup_x = round(min(max(x(warmup_until), x0), x1), 1)
    return Chart(
        chart_id,
        title,
        unit,
        series,
        x_ticks,
        y_ticks,
        empty=not ts,
        warmup_x=warmup_x,
        x_title=x_title,
        x_label=x_label,
    )


def history_html(history: Mapping[str, Any]) -> str:
    """The history page (`scalectl loadtest history --html`) from History.to_json(): charts
    of latency, throughput and error rate across the runs, oldest first, and their table."""
    from markupsafe import Markup

    from scalectl.templating import environment

    runs = [
        {**run, "t": i, "error_pct": None if run["error_rate"] is None else run["error_rate"] * 100}
        for i, run in enumerate(history["runs"], start=1)
    ]
    x_title, x_label = "run (oldest first)", "runs, oldest first"
    drawn = [
        chart(
            "chart-history-latency",
            "Latency per run",
            "ms",
            runs,
            LATENCY_LINES,
            x_title=x_title,
            x_label=x_label,
        ),
        chart(
            "chart-history-throughput",
            "Throughput per run",
            "requests/s",
            runs,
            [("rps", "#2563eb", "rps")],
            x_title=x_title,
            x_label=x_label,
        ),
        chart(
            "chart-history-errors",
            "Error rate per run",
            "%",
            runs,
            [("error rate", "#dc2626", "error_pct")],
            x_title=x_title,
            x_label=x_label,
        ),
    ]
    template = environment().get_template("loadtest/history.html.j2")
    text: str = template.render(
        history=history,
        runs=runs,
        charts=drawn,
        data_json=Markup(script_json(history)),
        fmt=fmt,
        pct=pct,
    )
    return text


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _nice(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (1 for none)."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= m * power * (1 + 1e-9):
            return m * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def script_json(data: Mapping[str, Any]) -> str:
    """JSON safe inside <script>: no `</script>` or `<!--` can end or confuse the element."""
    text = json.dumps(data, indent=1, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def fmt(value: Any, digits: int = 1) -> str:
    """A number for a table cell; n/a for none."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def pct(value: Any) -> str:
    """A fraction as a percentage for a table cell; n/a for none."""
    return "n/a" if value is None else f"{float(value) * 100:.2f}%"
