"""gunicorn configuration for the reference app, sized by refapp.settings (environment
variables). Run from this directory: gunicorn -c gunicorn.conf.py refapp.main:app"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# prometheus_client chooses multiprocess mode when it is first imported, in each worker after
# the fork, so the directory must be in the environment before any worker starts.
_OWN_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="refapp-metrics-")

from refapp import logs, settings  # noqa: E402  (after the environment is set)

_s = settings.get()

bind = f"{_s.host}:{_s.port}"
workers = max(1, _s.web_concurrency)
worker_class = "uvicorn_worker.UvicornWorker"
# Recycle workers now and then (a slow leak cannot grow forever); jitter keeps them from all
# restarting at once.
max_requests = _s.max_requests
max_requests_jitter = _s.max_requests_jitter
# SIGTERM: workers stop accepting and finish in-flight requests for up to this long.
graceful_timeout = _s.graceful_timeout
# Behind nginx, which keeps connections to us open: outlive its keepalive_timeout.
keepalive = 75
logconfig_dict = logs.dict_config(_s.log_level)
accesslog = None
# gunicorn 27's control socket has one default path per user: several instances on one
# host (the loopback stack, tests) would fight over it, and nothing here uses it.
control_socket_disable = True
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"  # heartbeat file off a possibly slow disk


def on_starting(server: Any) -> None:
    """Wipe the metrics of a previous run: counters would otherwise start from old files."""
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if path.exists():
        for child in path.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    path.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (memory, pool) so the sums describe live ones."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
