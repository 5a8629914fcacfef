"""Loaded by Locust beside plugin.py (`locust -f LOCUSTFILE,plugin.py,shapebound.py`), in
Locust's processes only: a locustfile's LoadTestShape, told to scalectl and bounded.

Locust ignores -u, -r and -t when a locustfile has a shape (unless the shape sets
`use_common_options`): the shape's own ticks end the run. scalectl cannot know that before
Locust has loaded the file, so this module tells it, in the file SCALECTL_SHAPE_OUT names
(`{"shape": class name, "common_options": bool, "cut": bool}`), and stops a shape that is
still running after `--scalectl-max-run-time` seconds the way Locust's own -t would
(runner.quit), so the results are still written. Locust installs its SIGTERM handler only
after a headless shape has ended, so a signal from outside would lose them.
"""

from __future__ import annotations

import json
import os
from typing import Any

import gevent
from locust import events
from locust.runners import WorkerRunner


@events.init_command_line_parser.add_listener
def _on_parser(parser: Any) -> None:
    parser.add_argument(
        "--scalectl-max-run-time",
        type=float,
        default=0.0,
        help="scalectl: stop a LoadTestShape still running after this many seconds (0: never)",
    )


def _leads(environment: Any) -> bool:
    """Whether this process runs the shape: a master or a single local process."""
    return environment.shape_class is not None and not isinstance(environment.runner, WorkerRunner)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    if _leads(environment):
        _tell(environment, cut=False)


@events.test_start.add_listener
def _on_start(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    limit = float(getattr(options, "scalectl_max_run_time", 0.0) or 0.0) if options else 0.0
    if _leads(environment) and limit > 0:
        gevent.spawn_later(limit, _cut, environment)


def _cut(environment: Any) -> None:
    _tell(environment, cut=True)
    environment.runner.quit()


def _tell(environment: Any, *, cut: bool) -> None:
    out = os.environ.get("SCALECTL_SHAPE_OUT")
    if not out:
        return
    shape = environment.shape_class
    payload = {
        "shape": type(shape).__name__,
        "common_options": bool(getattr(shape, "use_common_options", False)),
        "cut": cut,
    }
    tmp = f"{out}.tmp"
    with open(tmp, "w") as handle:
        json.dump(payload, handle)
    os.replace(tmp, out)
