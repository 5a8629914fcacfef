"""What the Locust plugin (plugin.py) records, in Locust's processes: every request in HDR
histograms per endpoint and per wall-clock second (Recorder), and the open model's arrivals
(OpenModel). Exported, shipped from workers to the master and merged as deltas.

No locust or gevent here: plugin.py owns Locust's events and the greenlets; this module is
plain bookkeeping, importable anywhere.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from typing import Any

from scalectl.loadtest import hdr
from scalectl.loadtest.hdr import HIGHEST_US
from scalectl.loadtest.ratecurve import RateCurve

# A window is encoded once this many seconds old: later than any worker's report of it
# (Locust's workers report every 3 s). A later one still reopens it.
CLOSE_AFTER_SECONDS = 10
LIVE_SECONDS = 120  # windows kept in the live file for progress and abort checks


class Recorder:
    """Per endpoint and per second. The hot path (`record`, once per request inside Locust)
    only appends the raw microseconds to a list; `flush` folds them into the histograms in
    batches with counts, which records exactly the same histogram with far fewer calls into
    the pure-Python HDR code (bench/loadtest_bench.py measures the generator overhead).

    Memory does not grow with the run's length beyond a few hundred bytes per endpoint and
    second: a full histogram is about 190 KB, so a window is kept as one only while it may
    still change, and `close` encodes the older ones (sparse, compressed). The whole-run
    histograms stay full, at full resolution: the gates use them."""

    def __init__(self) -> None:
        # key -> [method, name, req, fail, errors, hist, aggregate]
        self.totals: dict[str, list[Any]] = {}
        # second -> key -> [req, fail, hist, {error message: count}]: per second, so a warm-up
        # (`scalectl loadtest --warmup`) can be left out of every total afterwards
        self.windows: dict[int, dict[str, list[Any]]] = {}
        # second -> key -> [req, fail, encoded hist, {error message: count}]: closed windows
        self.closed: dict[int, dict[str, list[Any]]] = {}
        self.pending: dict[tuple[int, str], list[int]] = {}

    def record(
        self, method: str, name: str, micros: int, error: str | None, aggregate: bool = True
    ) -> None:
        """Count one request of `method name` that took `micros` µs in the current second;
        `error` is its failure message, None for a success; `aggregate` False keeps the
        endpoint out of the run's aggregate. Called once per request: cheap."""
        key = f"{method} {name}"
        second = int(time.time())
        values = self.pending.get((second, key))
        if values is None:
            values = self.pending[(second, key)] = []
            if key not in self.totals:
                self.totals[key] = [method, name, 0, 0, {}, hdr.new(), aggregate]
            self._window(second, key)
        values.append(min(max(micros, 1), HIGHEST_US))
        if error is not None:
            total = self.totals[key]
            total[3] += 1
            total[4][error] = total[4].get(error, 0) + 1
            window = self.windows[second][key]
            window[1] += 1
            window[3][error] = window[3].get(error, 0) + 1

    def _window(self, second: int, key: str) -> list[Any]:
        """The open window of `key` in `second`; a closed one is opened again (a worker's
        report that arrived late)."""
        per_key = self.windows.get(second)
        if per_key is None:
            per_key = self.windows[second] = {}
            for closed_key, (req, fail, encoded, errors) in self.closed.pop(second, {}).items():
                per_key[closed_key] = [req, fail, hdr.decode(encoded), dict(errors)]
        window = per_key.get(key)
        if window is None:
            window = per_key[key] = [0, 0, hdr.new(), {}]
        return window

    def flush(self) -> None:
        """Fold the values recorded since the last flush into the histograms."""
        pending, self.pending = self.pending, {}
        for (second, key), values in pending.items():
            total = self.totals[key]
            window = self._window(second, key)
            total[2] += len(values)
            window[0] += len(values)
            for value, count in Counter(values).items():
                total[5].record_value(value, count)
                window[2].record_value(value, count)

    def close(self, before: int) -> None:
        """Encode the windows of the seconds before `before`: nothing more is expected for
        them (a worker's late report still reopens one)."""
        self.flush()
        for second in [s for s in self.windows if s < before]:
            closed = self.closed[second] = {}
            for key, (req, fail, hist, errors) in self.windows.pop(second).items():
                closed[key] = [req, fail, hdr.encode(hist), errors]
                hdr.release(hist)

    def release(self) -> None:
        """Free every histogram: this recorder is done with (a worker's, once exported)."""
        for total in self.totals.values():
            hdr.release(total[5])
        for per_key in self.windows.values():
            for window in per_key.values():
                hdr.release(window[2])

    def export(self, since: int | None = None) -> dict[str, Any]:
        """Everything recorded (windows from `since` on), histograms encoded: what a worker
        sends, what raw.json holds, what the live file shows."""
        self.flush()
        windows = {
            second: {
                key: [req, fail, hdr.encode(hist), errors]
                for key, (req, fail, hist, errors) in per_key.items()
            }
            for second, per_key in self.windows.items()
            if since is None or second >= since
        }
        windows.update((s, w) for s, w in self.closed.items() if since is None or s >= since)
        return {
            "endpoints": {
                key: {
                    "method": method,
                    "name": name,
                    "requests": req,
                    "failures": fail,
                    "errors": errors,
                    "hist": hdr.encode(hist),
                    "aggregate": aggregate,
                }
                for key, (method, name, req, fail, errors, hist, aggregate) in self.totals.items()
            },
            "windows": {str(second): windows[second] for second in sorted(windows)},
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add what another process exported (a worker's report) to these totals and windows."""
        for key, item in data.get("endpoints", {}).items():
            total = self.totals.get(key)
            if total is None:
                aggregate = bool(item.get("aggregate", True))
                total = self.totals[key] = [
                    item["method"],
                    item["name"],
                    0,
                    0,
                    {},
                    hdr.new(),
                    aggregate,
                ]
            total[2] += item["requests"]
            total[3] += item["failures"]
            for message, count in item["errors"].items():
                total[4][message] = total[4].get(message, 0) + count
            hdr.add_encoded(total[5], item["hist"])
        for second, per_key in data.get("windows", {}).items():
            for key, (req, fail, encoded, *rest) in per_key.items():
                window = self._window(int(second), key)
                window[0] += req
                window[1] += fail
                hdr.add_encoded(window[2], encoded)
                for message, count in (rest[0] if rest else {}).items():
                    window[3][message] = window[3].get(message, 0) + count


class OpenModel:
    """The open model's bookkeeping in one process: per-user schedules and what happened to
    the arrivals. Arrivals, late ones and the worst lag are shipped to the master as deltas,
    like the histograms. The backlog (arrivals due but not yet sent) is a level, not a
    delta: every report carries the process's current backlog, frozen at the run's end, and
    the master keeps the latest one per worker. What is still due at the end is dropped."""

    def __init__(self) -> None:
        self.user_rate = 0.0  # a user's highest arrivals per second; 0 is the closed model
        self.curve: RateCurve | None = None  # one user's share of the rate over time
        self.origin: float | None = None  # unix time the curve's 0 s is: test_start
        self.schedules: list[list[float]] = []  # [phase, next arrival's number] per user
        self.intended: dict[int, float] = {}  # greenlet id -> intended start of its arrival
        self.ended_at: float | None = None  # the run's end (test_stopping), once known
        self.end_backlog = 0  # this process's backlog at ended_at
        self.backlogs: dict[str, int] = {}  # master: the latest backlog of each worker
        self.reset()

    def reset(self) -> None:
        """Forget the arrivals, late arrivals and lags counted so far: they were shipped."""
        # All per second of actual start, so a warm-up can be left out afterwards.
        self.arrivals: Counter[int] = Counter()
        self.late: Counter[int] = Counter()
        self.max_lag_us: dict[int, int] = {}

    def start(self, curve: RateCurve, now: float) -> None:
        """The open model runs in this process: each user's share of the rate is `curve`,
        from `now` on (the first test_start; a later one keeps the schedules)."""
        if self.origin is None:
            self.curve, self.origin, self.user_rate = curve, now, curve.peak

    def backlog(self, now: float) -> int:
        """Arrivals due by `now` that were not sent (their user is stuck behind slow
        responses). A user claims an arrival's number before sleeping until it, so a user
        waiting for its next, not yet due arrival has no backlog. Arrival k of a user is due
        once its share's integral reaches k + its phase."""
        if self.curve is None or self.origin is None:
            return 0
        done = self.curve.integral(now - self.origin)
        total = 0
        for phase, claimed in self.schedules:
            due = math.floor(done - phase) + 1  # arrivals 0 .. due-1 fell due by now
            total += max(0, due - int(claimed))
        return total

    def end(self, now: float) -> None:
        """The run ended at `now`: freeze the backlog, which is what gets dropped."""
        if self.ended_at is None:
            self.ended_at = now
            self.end_backlog = self.backlog(now)

    def current_backlog(self) -> int:
        """The backlog now, or as frozen when the run ended."""
        return self.end_backlog if self.ended_at is not None else self.backlog(time.time())

    def export(self) -> dict[str, Any]:
        """The arrivals, late arrivals and lags since the last export, and the current backlog;
        the counts start over."""
        data = {
            "user_rate": self.user_rate,
            "arrivals": {str(k): v for k, v in self.arrivals.items()},
            "late": {str(k): v for k, v in self.late.items()},
            "max_lag_us": {str(k): v for k, v in self.max_lag_us.items()},
            "backlog": self.current_backlog(),
        }
        self.reset()
        return data

    def merge(self, client_id: str, data: dict[str, Any]) -> None:
        """Add a worker's export (`client_id` names it) to the master's counts; its backlog
        replaces the one it reported before."""
        self.user_rate = max(self.user_rate, float(data.get("user_rate", 0.0)))
        self.arrivals.update({int(k): int(v) for k, v in data.get("arrivals", {}).items()})
        self.late.update({int(k): int(v) for k, v in data.get("late", {}).items()})
        for second, lag in data.get("max_lag_us", {}).items():
            self.max_lag_us[int(second)] = max(self.max_lag_us.get(int(second), 0), int(lag))
        # Latest wins: a worker's messages arrive in order over its one connection, and
        # once the worker saw the end its backlog no longer changes.
        self.backlogs[client_id] = int(data.get("backlog", 0))

    @property
    def dropped(self) -> int:
        """Arrivals due before the run ended but never sent: this process's own backlog at
        the end (a local run) plus the last backlog each worker reported (a master)."""
        return self.end_backlog + sum(self.backlogs.values())


def write_atomically(path: str, payload: dict[str, Any]) -> None:
    """`payload` as JSON at `path`, whole or not at all (a reader polls it)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        json.dump(payload, handle)
    os.replace(tmp, path)


def live_payload(recorder: Recorder, run_state: dict[str, Any], users: int) -> dict[str, Any]:
    """The live file's content now: the recent windows, for progress and abort checks."""
    now = int(time.time())
    # Only the recent windows: encoding the whole run every second would cost more and more
    # generator CPU as the run goes on (bench/loadtest_bench.py measures this overhead).
    exported = recorder.export(since=now - LIVE_SECONDS)
    return {
        "version": 1,
        "started_at": run_state["started_at"],
        "ended_at": time.time(),
        "users_now": users,
        "users": {s: u for s, u in run_state["users"].items() if int(s) >= now - LIVE_SECONDS},
        "endpoints": exported["endpoints"],
        "windows": exported["windows"],
    }
