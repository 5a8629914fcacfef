"""Loaded by Locust itself (`locust -f LOCUSTFILE,plugin.py`), in Locust's processes only.

scalectl's own process never imports this module: importing locust monkey-patches the
interpreter with gevent. Here that is fine.

Every request is recorded at microsecond resolution in HDR histograms, per endpoint and per
wall-clock second. Workers ship what they recorded since their last report to the master
(`report_to_master`), the master merges (`worker_report`), and at the end the master (or the
single local process) writes raw.json for scalectl to read (scalectl.loadtest.results).
Locust's own statistics round response times to about two significant digits; these do not.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

import gevent
from hdrh.histogram import HdrHistogram
from locust import events
from locust.runners import MasterRunner, WorkerRunner

HIGHEST_US = 3_600_000_000  # one hour
LIVE_SECONDS = 120  # windows kept in the live file for progress and abort checks


def _new() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, 3)


class Recorder:
    """Per endpoint and per second. The hot path (`record`, once per request inside Locust)
    only appends the raw microseconds to a list; `_flush` folds them into the histograms in
    batches with counts, which records exactly the same histogram with far fewer calls into
    the pure-Python HDR code (bench/loadtest_bench.py measures the generator overhead)."""

    def __init__(self) -> None:
        self.totals: dict[str, list[Any]] = {}  # key -> [method, name, req, fail, errors, hist]
        self.windows: dict[int, dict[str, list[Any]]] = {}  # second -> key -> [req, fail, hist]
        self.pending: dict[tuple[int, str], list[int]] = {}

    def record(self, method: str, name: str, micros: int, error: str | None) -> None:
        key = f"{method} {name}"
        second = int(time.time())
        values = self.pending.get((second, key))
        if values is None:
            values = self.pending[(second, key)] = []
            if key not in self.totals:
                self.totals[key] = [method, name, 0, 0, {}, _new()]
            if key not in self.windows.setdefault(second, {}):
                self.windows[second][key] = [0, 0, _new()]
        values.append(min(max(micros, 1), HIGHEST_US))
        if error is not None:
            total = self.totals[key]
            total[3] += 1
            total[4][error] = total[4].get(error, 0) + 1
            self.windows[second][key][1] += 1

    def _flush(self) -> None:
        pending, self.pending = self.pending, {}
        for (second, key), values in pending.items():
            total = self.totals[key]
            window = self.windows[second][key]
            total[2] += len(values)
            window[0] += len(values)
            for value, count in Counter(values).items():
                total[5].record_value(value, count)
                window[2].record_value(value, count)

    def export(self, since: int | None = None) -> dict[str, Any]:
        """Everything recorded (windows from `since` on), histograms encoded: what a worker
        sends, what raw.json holds, what the live file shows."""
        self._flush()
        return {
            "endpoints": {
                key: {
                    "method": method,
                    "name": name,
                    "requests": req,
                    "failures": fail,
                    "errors": errors,
                    "hist": hist.encode().decode("ascii"),
                }
                for key, (method, name, req, fail, errors, hist) in self.totals.items()
            },
            "windows": {
                str(second): {
                    key: [req, fail, hist.encode().decode("ascii")]
                    for key, (req, fail, hist) in per_key.items()
                }
                for second, per_key in self.windows.items()
                if since is None or second >= since
            },
        }

    def merge(self, data: dict[str, Any]) -> None:
        for key, item in data.get("endpoints", {}).items():
            total = self.totals.get(key)
            if total is None:
                total = self.totals[key] = [item["method"], item["name"], 0, 0, {}, _new()]
            total[2] += item["requests"]
            total[3] += item["failures"]
            for message, count in item["errors"].items():
                total[4][message] = total[4].get(message, 0) + count
            total[5].add(HdrHistogram.decode(item["hist"].encode("ascii")))
        for second, per_key in data.get("windows", {}).items():
            bucket = self.windows.setdefault(int(second), {})
            for key, (req, fail, encoded) in per_key.items():
                window = bucket.get(key)
                if window is None:
                    window = bucket[key] = [0, 0, _new()]
                window[0] += req
                window[1] += fail
                window[2].add(HdrHistogram.decode(encoded.encode("ascii")))


recorder = Recorder()
run_state: dict[str, Any] = {"started_at": None, "ended_at": None, "users": {}}


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None = None,
    **_: Any,
) -> None:
    error = None if exception is None else f"{type(exception).__name__}: {exception}"[:200]
    recorder.record(request_type, name, int(response_time * 1000), error)


@events.report_to_master.add_listener
def _on_report(client_id: str, data: dict[str, Any]) -> None:
    # Ship what was recorded since the last report, then start afresh (deltas merge exactly).
    global recorder
    data["scalectl"] = recorder.export()
    recorder = Recorder()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    if "scalectl" in data:
        recorder.merge(data["scalectl"])


@events.test_start.add_listener
def _on_start(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    run_state["started_at"] = time.time()
    gevent.spawn(_sample_users, environment)


@events.test_stop.add_listener
def _on_stop(environment: Any, **_: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        run_state["ended_at"] = time.time()


def _sample_users(environment: Any) -> None:
    live = os.environ.get("SCALECTL_LIVE_OUT")
    while run_state["ended_at"] is None:
        run_state["users"][str(int(time.time()))] = environment.runner.user_count
        if live:
            _write_live(live, environment.runner.user_count)
        gevent.sleep(1)


def _write_live(path: str, users: int) -> None:
    now = int(time.time())
    # Only the recent windows: encoding the whole run every second would cost more and more
    # generator CPU as the run goes on (bench/loadtest_bench.py measures this overhead).
    exported = recorder.export(since=now - LIVE_SECONDS)
    payload = {
        "version": 1,
        "started_at": run_state["started_at"],
        "ended_at": time.time(),
        "users_now": users,
        "users": {s: u for s, u in run_state["users"].items() if int(s) >= now - LIVE_SECONDS},
        "endpoints": exported["endpoints"],
        "windows": exported["windows"],
    }
    _write_atomically(path, payload)


def _write_atomically(path: str, payload: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        json.dump(payload, handle)
    os.replace(tmp, path)


@events.quitting.add_listener
def _on_quit(environment: Any, **_: Any) -> None:
    out = os.environ.get("SCALECTL_RAW_OUT")
    if not out or isinstance(environment.runner, WorkerRunner):
        return
    started = run_state["started_at"] or time.time()
    payload = {
        "version": 1,
        "started_at": started,
        "ended_at": run_state["ended_at"] or time.time(),
        "users": run_state["users"],
        **recorder.export(),
        "master": isinstance(environment.runner, MasterRunner),
    }
    _write_atomically(out, payload)
