"""raw.json, what the Locust plugin measured, read into typed results (loadtest.results).

The Locust child processes record every request into HDR histograms at microsecond
resolution (scalectl.loadtest.child.plugin), merge them on the Locust master, and write
them to `raw.json`; this module turns that file into Results. It never imports
locust or gevent (they monkey-patch the interpreter).

raw.json (written by the plugin, read only here):
    {"version": 1, "started_at": float, "ended_at": float,
     "endpoints": {"<METHOD> <name>": {"method", "name", "requests", "failures",
                                       "errors": {message: count}, "hist": base64,
                                       "aggregate": bool}},
     "windows": {"<unix second>": {"<METHOD> <name>": [requests, failures, base64,
                                                        {message: count}]}},
     "users": {"<unix second>": int},
     "checks": {"<unix second>": {"<METHOD> <name>": {"<check number>": [passed, failed]}}},
                                                      # with the SLO file's checks only
     "groups": {"endpoints": {"group <NAME>": {<as endpoints>}}, "windows": {<as windows>}},
                                  # with the SLO file's groups by status or tag only
     "open": {"user_rate", "arrivals": {"<unix second>": int},
              "late": {"<unix second>": int}, "max_lag_us": {"<unix second>": int},
              "dropped", "spawned_at": float | null, "ended_at": float,
              "raw": {<endpoints as above>}, "raw_windows": {<windows as above>}}}
                                                      # open model (--rate) only

`open.ended_at` is when the run's time was up (Locust's test_stopping), before the users
were stopped; `open.spawned_at` when every user was running (null if the ramp-up outlasted
the run).

In the open model the main histograms hold latency corrected for coordinated omission
(from each arrival's intended start) and `open.raw` the uncorrected latency.

The aggregate ("Aggregated", the global SLOs, the per-second totals) counts every request
type, as Locust's own does: HTTP and whatever a custom client fires (grpc, sql, ...). An
endpoint whose events asked to stay out (`"aggregate": false`, scenarios/pipeline.py's
job completion times) is gated by its name only.

Warm-up (`scalectl loadtest --warmup`): the first seconds of the run are sent but not
gated. Every total here (endpoints, the aggregate, errors, throughput, arrivals, late and the
uncorrected latency) then comes from the per-second windows from the first whole second at
least `warmup` seconds after the start; earlier windows stay in `windows`, marked warm-up.
A request belongs to the second it completed in. Rounding up to a whole second leaves out
at most one second more than asked, never less.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from scalectl.errors import ScalectlError
from scalectl.loadtest import hdr
from scalectl.loadtest.results import (
    METRIC_REQUEST_TYPE,
    Endpoint,
    Latency,
    OpenStats,
    Results,
    Window,
    sum_checks,
)


def _hist(encoded: str | None) -> Any:
    return hdr.decode(encoded) if encoded else hdr.new()


def load_raw(path: Path, warmup: float = 0.0) -> Results:
    """The results in a raw.json written by the Locust plugin, the first `warmup` seconds left
    out of every total. Raises ScalectlError when the file is missing or not JSON (the load
    generator failed)."""
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ScalectlError(f"{path}: the load generator wrote no usable results ({exc})") from None
    return from_raw(raw, warmup)


def in_aggregate(endpoints: dict[str, Any]) -> set[str]:
    """The endpoint keys the aggregate counts: all but those recorded with `"aggregate":
    false` and custom metrics (type METRIC)."""
    return {
        key
        for key, item in endpoints.items()
        if item.get("aggregate", True) is not False and item.get("method") != METRIC_REQUEST_TYPE
    }


def warmup_boundary(started: float, warmup: float) -> int | None:
    """The unix second the measured part starts at; None without a warm-up."""
    return math.ceil(started + warmup) if warmup > 0 else None


# One endpoint's totals while they are summed: [method, name, requests, failures, errors, hist]
_Totals = list[Any]


def _whole_run_totals(raw: dict[str, Any]) -> dict[str, _Totals]:
    return {
        key: [
            str(item["method"]),
            str(item["name"]),
            int(item["requests"]),
            int(item["failures"]),
            {str(k): int(v) for k, v in item.get("errors", {}).items()},
            _hist(item.get("hist")),
        ]
        for key, item in raw.items()
    }


def _empty_totals(raw: dict[str, Any]) -> dict[str, _Totals]:
    """Every endpoint the run saw, with nothing counted yet: an endpoint seen only in the
    warm-up still exists (an SLO naming it is inconclusive, not a typo)."""
    return {
        key: [str(item["method"]), str(item["name"]), 0, 0, {}, _hist(None)]
        for key, item in raw.items()
    }


def _add_window(totals: dict[str, _Totals], key: str, entry: list[Any], hist: Any) -> None:
    total = totals.get(key)
    if total is None:
        method, _, name = key.partition(" ")
        total = totals[key] = [method, name, 0, 0, {}, _hist(None)]
    total[2] += int(entry[0])
    total[3] += int(entry[1])
    for message, count in (entry[3] if len(entry) > 3 else {}).items():
        total[4][str(message)] = total[4].get(str(message), 0) + int(count)
    total[5].add(hist)


def from_raw(raw: dict[str, Any], warmup: float = 0.0) -> Results:
    """Typed results from raw.json's dict (or the live file's), the first `warmup` seconds left
    out of every total and marked in the windows."""
    started, ended = float(raw["started_at"]), float(raw["ended_at"])
    boundary = warmup_boundary(started, warmup)
    duration = max(ended - (started if boundary is None else boundary), 1e-9)
    users = {int(k): int(v) for k, v in raw.get("users", {}).items()}
    start_second = math.floor(started)
    aggregated = in_aggregate(raw.get("endpoints", {}))
    # Without a warm-up the whole-run histograms are the totals; with one, the totals are
    # summed from the measured windows (each histogram decoded once, for both uses).
    if boundary is None:
        totals = _whole_run_totals(raw.get("endpoints", {}))
    else:
        totals = _empty_totals(raw.get("endpoints", {}))
    windows = []
    histograms: dict[int, dict[str, list[Any]]] = {}
    for second, per_endpoint in sorted((int(k), v) for k, v in raw.get("windows", {}).items()):
        merged = _hist(None)
        requests = failures = 0
        parts: dict[str, tuple[int, int, Latency]] = {}
        in_warmup = boundary is not None and second < boundary
        if not in_warmup:
            histograms[second] = {key: list(entry[:3]) for key, entry in per_endpoint.items()}
        for key, entry in per_endpoint.items():
            hist = _hist(entry[2])
            parts[key] = (int(entry[0]), int(entry[1]), Latency.of(hist))
            if boundary is not None and not in_warmup:
                _add_window(totals, key, entry, hist)
            if key in aggregated:
                merged.add(hist)
                requests += int(entry[0])
                failures += int(entry[1])
            hdr.release(hist)  # an hour's run has tens of thousands: free each at once
        windows.append(
            Window(
                t=second - start_second,
                requests=requests,
                failures=failures,
                latency=Latency.of(merged),
                users=users.get(second, 0),
                endpoints=parts,
                warmup=in_warmup,
            )
        )
        hdr.release(merged)
    checks = _checks(raw.get("checks", {}), boundary)
    total_hist = _hist(None)
    endpoints = []
    total_requests = total_failures = 0
    total_errors: dict[str, int] = {}
    for key, (method, name, requests, failures, errors, hist) in sorted(totals.items()):
        if key in aggregated:
            total_hist.add(hist)
            total_requests += requests
            total_failures += failures
            for message, count in errors.items():
                total_errors[message] = total_errors.get(message, 0) + count
        endpoints.append(
            Endpoint(
                key=key,
                method=method,
                name=name,
                requests=requests,
                failures=failures,
                errors=errors,
                latency=Latency.of(hist),
                rps=requests / duration,
                hist=hist,
                checks=checks.get(key, {}),
            )
        )
    total = Endpoint(
        key="Aggregated",
        method="",
        name="Aggregated",
        requests=total_requests,
        failures=total_failures,
        errors=total_errors,
        latency=Latency.of(total_hist),
        rps=total_requests / duration,
        checks=sum_checks(e.checks for e in endpoints),
    )
    users_since = {second - start_second: count for second, count in users.items()}
    worker_demand = {
        str(label): [float(v) for v in samples]
        for label, samples in raw.get("worker_demand", {}).items()
    }
    return Results(
        started,
        ended,
        endpoints,
        total,
        windows,
        _open(raw, started, boundary),
        users_since,
        worker_demand,
        warmup=warmup if boundary is not None else 0.0,
        measured_from=None if boundary is None else float(boundary),
        histograms=histograms,
        aggregated=frozenset(aggregated),
        filtered=_filtered(raw, warmup),
    )


def _filtered(raw: dict[str, Any], warmup: float) -> dict[str, Endpoint]:
    """The groups by status or tag, each counted like an endpoint (warm-up left out)."""
    groups = raw.get("groups")
    if not groups:
        return {}
    alone = {k: raw[k] for k in ("started_at", "ended_at")}
    counted = from_raw({**alone, **groups}, warmup)
    return {e.key: e for e in counted.endpoints}


def _checks(raw: dict[str, Any], boundary: int | None) -> dict[str, dict[int, tuple[int, int]]]:
    """raw.json's check counts summed per endpoint key over the measured seconds."""
    out: dict[str, dict[int, tuple[int, int]]] = {}
    for second, per_key in raw.items():
        if boundary is not None and int(second) < boundary:
            continue
        for key, tallies in per_key.items():
            mine = out.setdefault(str(key), {})
            for check_id, (passed, failed) in tallies.items():
                had = mine.get(int(check_id), (0, 0))
                mine[int(check_id)] = (had[0] + int(passed), had[1] + int(failed))
    return out


def _open(raw: dict[str, Any], started: float, boundary: int | None) -> OpenStats | None:
    data = raw.get("open")
    if not data:
        return None
    start_second = math.floor(started)
    measured = start_second if boundary is None else boundary  # the first measured second
    user_rate = float(data["user_rate"])
    end = float(data.get("ended_at") or raw["ended_at"])
    steady = None
    if data.get("spawned_at") is not None and user_rate > 0:
        # Each user's schedule runs from the process's start; from its spawn on, every
        # arrival of it that falls due is its own. So once all users run, all of the rate is.
        first = math.ceil(float(data["spawned_at"])) - start_second
        first = max(first, measured - start_second)
        last = math.floor(end) - start_second  # the last, partial second is left out
        if last > first:
            steady = (first, last)
    if boundary is None:
        totals = _whole_run_totals(data.get("raw", {}))
    else:
        totals = _empty_totals(data.get("raw", {}))
        for second, per_key in data.get("raw_windows", {}).items():
            if int(second) >= boundary:
                for key, entry in per_key.items():
                    window = _hist(entry[2])
                    _add_window(totals, key, entry, window)
                    hdr.release(window)
    raw_total = _hist(None)
    latencies: dict[str, Latency] = {}
    aggregated = in_aggregate(data.get("raw", {}))
    for key, (_, _, _, _, _, hist) in sorted(totals.items()):
        latencies[key] = Latency.of(hist)
        if key in aggregated:
            raw_total.add(hist)
    latencies["Aggregated"] = Latency.of(raw_total)

    def measured_only(per_second: dict[str, Any]) -> dict[int, int]:
        return {int(k): int(v) for k, v in per_second.items() if int(k) >= measured}

    lags = measured_only(data.get("max_lag_us", {}))
    return OpenStats(
        user_rate=user_rate,
        arrivals={k - start_second: v for k, v in measured_only(data.get("arrivals", {})).items()},
        late=sum(measured_only(data.get("late", {})).values()),
        dropped=int(data.get("dropped", 0)),
        max_lag_ms=round(max(lags.values(), default=0) / 1000, 3),
        raw=latencies,
        steady=steady,
        duration=max(end - (started if boundary is None else boundary), 0.0),
        offset=started - start_second,
    )
