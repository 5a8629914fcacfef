"""Loaded by Locust itself (`locust -f LOCUSTFILE,plugin.py`), in Locust's processes only.

scalectl's own process never imports this module: importing locust monkey-patches the
interpreter with gevent. Here that is fine.

Every request is recorded at microsecond resolution in HDR histograms, per endpoint and per
wall-clock second. Workers ship what they recorded since their last report to the master
(`report_to_master`), the master merges (`worker_report`), and at the end the master (or the
single local process) writes raw.json for scalectl to read (scalectl.loadtest.results).
Locust's own statistics round response times to about two significant digits; these do not.

Open model (`scalectl loadtest --rate R`): every user sends on its own fixed schedule of
R/users arrivals per second, whatever the response times (wrk2's model, per user instead of
per connection). A task is one arrival. With `--rate-stages` the rate ramps: each user gets
1/users of the rate curve (scalectl.loadtest.ratecurve) and its k-th arrival falls where its
share's integral since the process's test_start reaches k + its random phase, so the whole
run's n-th arrival falls about where the curve's integral reaches n. A held rate is the
same schedule with one flat stage. The first request of an arrival is measured from
its *intended* start, so time spent waiting behind a slow response is counted (the
coordinated-omission correction); that corrected latency goes to the main histograms and
the uncorrected one to `raw`. Arrivals that start more than LATE_SECONDS after their
intended time are late (child/pacing.py paces the users); arrivals due before the run
ended (test_stopping, not after the users were stopped) but never sent are dropped. Each
process reports its backlog with every report and once more the moment the run ends; the
master keeps the latest per worker.

A warm-up (`scalectl loadtest --warmup`) is not known here: everything that a warm-up must
be left out of is also kept per wall-clock second (histograms, failures and their messages,
arrivals, late arrivals), and scalectl.loadtest.results drops the warm-up seconds.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import gevent
import psutil
from locust import events
from locust.runners import MasterRunner, WorkerRunner

# By package, not by path: Locust loads this file alone, as a module named `plugin`, and
# scalectl is importable in its processes (they run scalectl's own interpreter).
from scalectl.loadtest.child.checks import Checker
from scalectl.loadtest.child.filters import GroupFilters
from scalectl.loadtest.child.pacing import pace
from scalectl.loadtest.child.recording import (
    CLOSE_AFTER_SECONDS,
    OpenModel,
    Recorder,
    live_payload,
    write_atomically,
)
from scalectl.loadtest.cpu import CpuMeter
from scalectl.loadtest.ratecurve import RateCurve
from scalectl.loadtest.results import METRIC_REQUEST_TYPE
from scalectl.loadtest.slo import SloSpec

# A request event whose context has this key set to False stays out of the aggregate: it
# measures something else than a request (scenarios/pipeline.py's job completion times).
AGGREGATE_CONTEXT_KEY = "scalectl_aggregate"


recorder = Recorder()
raw_recorder = Recorder()  # open model only: latency from the actual start, uncorrected
open_model = OpenModel()
checker = Checker()  # the SLO file's response checks (child/checks.py), if it has any
filters = GroupFilters()  # its groups by status or tag (child/filters.py), if it has any
run_state: dict[str, Any] = {
    "started_at": None,
    "spawned_at": None,  # when every user was running (never, if the ramp outlasted the run)
    "ended_at": None,
    "users": {},
    "worker_demand": {},
    "reports": 0,
}
_meter = CpuMeter(psutil.Process())
_environment: Any = None
_metrics_server: Any = None  # gevent's WSGIServer for /metrics, when asked for
END_MESSAGE = "scalectl_end"  # a worker's report at the run's end, sent before its users stop


@events.init_command_line_parser.add_listener
def _on_parser(parser: Any) -> None:
    # A custom argument travels from the master to its workers with each spawn message,
    # so distributed workers on other machines learn the rate without being told.
    parser.add_argument(
        "--scalectl-user-rate",
        type=float,
        default=0.0,
        help="scalectl open model: arrivals per second per user (0: closed model)",
    )
    parser.add_argument(
        "--scalectl-user-stages",
        default="",
        help="scalectl open model: arrivals per second per user over time, as "
        "TIME:RATE,... in seconds (a ramping rate; empty: none)",
    )
    # Not given on the command line: the master sets it at its test_start and it reaches
    # the workers with the spawn message, so every process's schedule counts from one 0 s.
    parser.add_argument("--scalectl-origin", type=float, default=0.0, help=argparse.SUPPRESS)
    # What the plugin needs of the SLO file, as JSON (SloSpec.for_plugin()): its checks and
    # its groups by status or tag. It reaches the workers likewise.
    parser.add_argument("--scalectl-slo", default="", help=argparse.SUPPRESS)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    global _environment
    _environment = environment
    # Locust arms its -t timer with gevent.spawn_later right after this event, outside the
    # event loop, where gevent does not refresh the loop's cached clock: it still reads the
    # time of the loop's last turn, before the locustfile's imports, and the run ends early
    # by however long start-up took (-t 3s ran 0.6 s on a busy machine). Refresh it here.
    gevent.get_hub().loop.update_now()
    if _user_curve(environment) is not None and environment.shape_class is not None:
        raise SystemExit(
            "scalectl: --rate cannot be combined with a load shape (LoadTestShape) "
            "in the locustfile: the shape sets the users, --rate sets the arrivals"
        )
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(END_MESSAGE, _on_end_message)
    if not isinstance(environment.runner, WorkerRunner):
        _serve_metrics(environment)


def _serve_metrics(environment: Any) -> None:
    """`/metrics` (child/metrics.py) on SCALECTL_METRICS_ADDR (host:port), if set."""
    global _metrics_server
    address = os.environ.get("SCALECTL_METRICS_ADDR")
    if not address:
        return
    from gevent.pywsgi import WSGIServer

    from scalectl.loadtest.child.metrics import wsgi_app

    host, _, port = address.rpartition(":")
    state = {
        "recorder": lambda: recorder,
        "open_model": open_model,
        "users": lambda: environment.runner.user_count if environment.runner else 0,
        "now": time.time,
    }
    server = WSGIServer((host.strip("[]"), int(port)), wsgi_app(state), log=None, error_log=None)
    try:
        server.start()
    except OSError as exc:
        raise SystemExit(f"scalectl: cannot serve metrics on {address}: {exc}") from None
    _metrics_server = server


def _user_curve(environment: Any) -> RateCurve | None:
    """One user's share of the open model's rate over time; None in the closed model."""
    options = environment.parsed_options
    if not options:
        return None
    stages = str(getattr(options, "scalectl_user_stages", "") or "")
    if stages:
        return RateCurve.parse(stages)
    rate = float(getattr(options, "scalectl_user_rate", 0.0) or 0.0)
    return RateCurve.constant(rate) if rate > 0 else None


@events.request.add_listener
def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None = None,
    start_time: float | None = None,
    context: dict[str, Any] | None = None,
    response: Any = None,
    **_: Any,
) -> None:
    error = None if exception is None else f"{type(exception).__name__}: {exception}"[:200]
    micros = int(response_time * 1000)
    # A custom metric (request_type METRIC) is a value, not a request: never aggregated.
    aggregate = request_type != METRIC_REQUEST_TYPE and (
        not context or context.get(AGGREGATE_CONTEXT_KEY, True) is not False
    )
    corrected = micros
    if open_model.curve is not None and request_type != METRIC_REQUEST_TYPE:
        # The first request of an arrival counts from the arrival's intended start. A custom
        # metric is a value, not a request: neither corrected nor taking the correction.
        intended = open_model.intended.pop(id(gevent.getcurrent()), None)
        if intended is not None and start_time is not None and start_time > intended:
            corrected += int((start_time - intended) * 1_000_000)
    recorder.record(request_type, name, corrected, error, aggregate)
    if open_model.curve is not None:
        raw_recorder.record(request_type, name, micros, error, aggregate)
    if filters.groups:
        filters.record(request_type, name, corrected, error, response, context)


@events.report_to_master.add_listener
def _on_report(client_id: str, data: dict[str, Any]) -> None:
    # This worker's CPU demand since its last report (% of a core, used plus waited for a
    # core): the master's only view of a worker on another machine (`scalectl loadtest
    # --master`). The first reading is empty.
    _, demand = _meter.read()
    if run_state["reports"]:
        data["scalectl_demand"] = demand
    run_state["reports"] += 1
    _fill_report(data)


def _fill_report(data: dict[str, Any]) -> None:
    # Ship what was recorded since the last report, then start afresh (deltas merge exactly).
    global recorder, raw_recorder
    data["scalectl"] = recorder.export()
    if checker.compiled:
        data["scalectl_checks"] = checker.export()
    if filters.groups:
        data["scalectl_groups"] = filters.export()
    recorder.release()
    recorder = Recorder()
    if open_model.user_rate > 0:
        data["scalectl_open"] = {
            "raw": raw_recorder.export(),
            **open_model.export(),
        }
        raw_recorder.release()
        raw_recorder = Recorder()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any]) -> None:
    if "scalectl" in data:
        recorder.merge(data["scalectl"])
    if "scalectl_checks" in data:
        checker.merge(data["scalectl_checks"])
    if "scalectl_groups" in data:
        filters.recorder.merge(data["scalectl_groups"])
    if "scalectl_demand" in data and _environment is not None:
        index = _environment.runner.get_worker_index(client_id)
        run_state["worker_demand"].setdefault(f"worker-{index}", []).append(data["scalectl_demand"])
    if "scalectl_open" in data:
        raw_recorder.merge(data["scalectl_open"]["raw"])
        open_model.merge(client_id, data["scalectl_open"])


def _on_end_message(environment: Any, msg: Any, **_: Any) -> None:
    _on_worker_report(msg.node_id, msg.data)


@events.test_start.add_listener
def _on_start(environment: Any, **_: Any) -> None:
    # Pace only in the open model, so the closed model's hot path stays as Locust wrote it
    # (bench/loadtest_bench.py). A worker knows the rate here: the master's custom
    # arguments arrive with the spawn message, before test_start.
    text = str(getattr(environment.parsed_options, "scalectl_slo", "") or "")
    if text and not (checker.compiled or filters.groups):
        spec = SloSpec.model_validate_json(text)  # checked by scalectl before the run
        filters.load(spec)
        if checker.load(spec):
            # A listener only when there are checks: a run without them pays nothing.
            environment.events.request.add_listener(checker.on_request)
    curve = _user_curve(environment)
    if curve is not None:
        options = environment.parsed_options
        origin = float(getattr(options, "scalectl_origin", 0.0) or 0.0)
        if not isinstance(environment.runner, WorkerRunner) or origin <= 0:
            origin = time.time()
            options.scalectl_origin = origin  # sent to the workers with the spawn message
        open_model.start(curve, origin)
        for user_class in environment.user_classes:
            pace(user_class, open_model)
    if isinstance(environment.runner, WorkerRunner):
        return
    run_state["started_at"] = time.time()
    gevent.spawn(_sample_users, environment)


@events.spawning_complete.add_listener
def _on_spawned(**_: Any) -> None:
    # Fired on the master (once every worker runs its share) and in a local run.
    if run_state["spawned_at"] is None:
        run_state["spawned_at"] = time.time()


@events.test_stopping.add_listener
def _on_stopping(environment: Any, **_: Any) -> None:
    # The run's end: the planned run time is up (or the run was stopped). Users are stopped
    # after this, for up to --stop-timeout; arrivals falling due meanwhile are not dropped.
    # A worker sees this when the master's stop or quit message arrives, a few milliseconds
    # after the master.
    open_model.end(time.time())
    if isinstance(environment.runner, WorkerRunner) and open_model.user_rate > 0:
        # Ship everything up to the end, the final backlog included, now: the report Locust
        # sends after the users stopped can come after the master quit (it waits 0.5 s).
        data: dict[str, Any] = {}
        _fill_report(data)
        environment.runner.send_message(END_MESSAGE, data)


@events.test_stop.add_listener
def _on_stop(environment: Any, **_: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        run_state["ended_at"] = time.time()


def _sample_users(environment: Any) -> None:
    live = os.environ.get("SCALECTL_LIVE_OUT")
    while run_state["ended_at"] is None:
        now = int(time.time())
        run_state["users"][str(now)] = environment.runner.user_count
        recorder.close(now - CLOSE_AFTER_SECONDS)
        raw_recorder.close(now - CLOSE_AFTER_SECONDS)
        filters.recorder.close(now - CLOSE_AFTER_SECONDS)
        if live:
            payload = live_payload(recorder, run_state, environment.runner.user_count)
            write_atomically(live, payload)
        gevent.sleep(1)


@events.quitting.add_listener
def _on_quit(environment: Any, **_: Any) -> None:
    if _metrics_server is not None:
        _metrics_server.stop(timeout=1)
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
        "worker_demand": run_state["worker_demand"],
    }
    if open_model.user_rate > 0:
        state = open_model.export()
        del state["backlog"]  # this process's own; dropped below adds the workers'
        uncorrected = raw_recorder.export()
        payload["open"] = {
            "raw": uncorrected["endpoints"],
            "raw_windows": uncorrected["windows"],
            **state,
            "dropped": open_model.dropped,
            "spawned_at": run_state["spawned_at"],
            "ended_at": open_model.ended_at or payload["ended_at"],
        }
    if checker.compiled:
        payload["checks"] = checker.export()
    if filters.groups:
        payload["groups"] = filters.export()
    write_atomically(out, payload)
