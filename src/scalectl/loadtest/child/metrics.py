"""What the Locust master (or the single local process) serves on `/metrics` while a run goes
on (`scalectl loadtest --metrics-port`): the Prometheus text exposition of its counters and
of percentiles from its HDR histograms, for Prometheus and Grafana (the dashboard `scalectl
plan` renders as grafana/loadtest-dashboard.json).

Counters (requests, failures, arrivals) count from the run's start; Prometheus' rate() turns
them into throughput. Latency is a summary whose quantiles cover the last WINDOW_SECONDS
whole seconds, from the same histograms the gates use, so a dashboard shows recent latency
rather than a whole-run figure that moves less and less as the run goes on.

No locust or gevent here (plugin.py serves it): plain text from the recorder's state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from scalectl.loadtest import hdr
from scalectl.loadtest.child.recording import OpenModel, Recorder

WINDOW_SECONDS = 10  # the latency quantiles' window: open windows, not yet encoded
QUANTILES = (0.5, 0.9, 0.95, 0.99)
PREFIX = "scalectl_loadtest"


def _escape(value: str) -> str:
    # The exposition format's label-value escapes; endpoint names come from the locustfile.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _family(name: str, kind: str, text: str, samples: Iterable[str]) -> Iterator[str]:
    yield f"# HELP {PREFIX}_{name} {text}"
    yield f"# TYPE {PREFIX}_{name} {kind}"
    for sample in samples:
        yield f"{PREFIX}_{name}{sample}"


def _recent(recorder: Recorder, now: int) -> dict[str, Any]:
    """Per endpoint key, and "" for the aggregate: the last WINDOW_SECONDS whole seconds."""
    merged: dict[str, Any] = {}
    for second in range(now - WINDOW_SECONDS, now):
        for key, window in recorder.windows.get(second, {}).items():
            for target in (key, "") if recorder.totals[key][6] else (key,):
                if target not in merged:
                    merged[target] = hdr.new()
                merged[target].add(window[2])
    return merged


def exposition(recorder: Recorder, open_model: OpenModel, users: int, now: float) -> str:
    """The text `/metrics` answers at unix time `now`."""
    recorder.flush()
    lines: list[str] = []
    totals = sorted(recorder.totals.items())

    def by_endpoint(field: int) -> Iterator[str]:
        for _, total in totals:  # [method, name, requests, failures, ...]
            yield f"{_labels(request_type=total[0], name=total[1])} {total[field]}"

    lines += _family("users", "gauge", "Simulated users running.", [f" {users}"])
    lines += _family(
        "requests_total", "counter", "Requests completed, by request type and name.",
        by_endpoint(2),
    )  # fmt: skip
    lines += _family(
        "failures_total", "counter", "Requests that failed, by request type and name.",
        by_endpoint(3),
    )  # fmt: skip
    recent = _recent(recorder, int(now))
    quantiles = []
    whole: dict[str, tuple[int, float]] = {"": (0, 0.0)}  # key -> (count, sum in seconds)
    for key, total in totals:
        summary = hdr.Summary(total[5])
        whole[key] = (summary.total, summary.mean * summary.total / 1e6)
        if total[6]:
            count, seconds = whole[""]
            whole[""] = (count + whole[key][0], seconds + whole[key][1])
    for key in sorted(whole):
        labels = {"request_type": "", "name": "Aggregated"}
        if key:
            labels = {"request_type": recorder.totals[key][0], "name": recorder.totals[key][1]}
        hist = recent.get(key)
        if hist is not None:
            summary = hdr.Summary(hist)
            hdr.release(hist)
            for q in QUANTILES:
                value = summary.percentile(q * 100) / 1e6
                quantiles.append(f"{_labels(**labels, quantile=f'{q:g}')} {value:g}")
        count, seconds = whole[key]
        quantiles.append(f"_sum{_labels(**labels)} {seconds:g}")
        quantiles.append(f"_count{_labels(**labels)} {count}")
    # A summary, as client libraries' are: quantiles over a recent window (theirs slide over
    # 10 minutes by default), _sum and _count over the whole run.
    lines += _family(
        "response_time_seconds", "summary",
        f"Response time: quantiles over the last {WINDOW_SECONDS} s from HDR histograms; "
        "sum and count over the run.",
        quantiles,
    )  # fmt: skip
    if open_model.user_rate > 0:
        arrivals = sum(open_model.arrivals.values())
        late = sum(open_model.late.values())
        lines += _family(
            "arrivals_total", "counter", "Open model: arrivals started.", [f" {arrivals}"]
        )
        lines += _family(
            "late_arrivals_total", "counter", "Open model: arrivals started late.", [f" {late}"]
        )
        lines += _family(
            "backlog", "gauge", "Open model: arrivals due but not sent.",
            [f" {open_model.current_backlog() + sum(open_model.backlogs.values())}"],
        )  # fmt: skip
    return "\n".join(lines) + "\n"


def wsgi_app(state: dict[str, Any]) -> Any:
    """A WSGI application serving exposition() of `state` (recorder, open_model, users: a
    callable, now: a callable) on /metrics, 404 elsewhere."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: /metrics\n"]
        body = exposition(
            state["recorder"](), state["open_model"], state["users"](), state["now"]()
        ).encode()
        start_response(
            "200 OK",
            [("Content-Type", "text/plain; version=0.0.4"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app
