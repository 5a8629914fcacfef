"""How each app instance, queue worker, nginx and Prometheus of the local stack is started:
argv, environment, working directory and log. `up` and `restart_member` both launch from
here, so a restarted member runs exactly as `up` started it."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from scalectl import resources
from scalectl.plan import Prepared
from scalectl.plan.appenv import APP_DEFAULTS
from scalectl.plan.context import ServiceView, WorkerView, app_env, build
from scalectl.stack import credentials
from scalectl.stack.process import child_environment, identity, spawn
from scalectl.stack.state import Member, StackState


def app_dir() -> Path:
    return Path(str(resources.data_dir("reference_app")))


def worker_ports(prepared: Prepared) -> list[int]:
    views: list[WorkerView] = build(prepared.loaded, prepared.sizing)["workers"]
    return [w.metrics_port for w in views]


@dataclass(frozen=True)
class Launch:
    """How one app instance or worker of the stack is started: by `up`, and again by
    `restart_member` (fault drills, the graceful-shutdown check)."""

    name: str
    kind: str  # app | worker
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    port: int
    health_url: str
    url: str | None = None
    metrics_dir: Path | None = None
    drain_seconds: float | None = None

    def spawn(self) -> psutil.Process:
        if self.metrics_dir is not None:
            # prometheus_client multiprocess files of an earlier run would skew the counters.
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            self.metrics_dir.mkdir(parents=True)
        return spawn(self.argv, log=self.log, env=self.env, cwd=self.cwd)

    def member(self, proc: psutil.Process) -> Member:
        exe, cmdline = identity(proc, self.argv)
        return Member(
            self.name,
            self.kind,
            proc.pid,
            proc.create_time(),
            str(self.log),
            self.port,
            health_url=self.health_url,
            url=self.url,
            drain_seconds=self.drain_seconds,
            exe=exe,
            cmdline=cmdline,
        )


def base_env(prepared: Prepared, state: StackState, env: Mapping[str, str]) -> dict[str, str]:
    root = Path(state.state_dir)
    return {
        **child_environment(env),
        # The app's own tuning knobs, when the caller sets them on purpose (drills and
        # tests do): named settings of the app, not a CI's credentials.
        **{name: value for name, value in env.items() if name in APP_DEFAULTS},
        **app_environment(prepared),
        # The password as a file, as on Kubernetes and Compose; Redis takes it in its URL
        # (the environment of a process is readable by its own user only).
        "DATABASE_URL": state.urls["database"],
        "DATABASE_PASSWORD_FILE": str(credentials.secrets_dir(root) / "postgres"),
        "REDIS_URL": credentials.authenticated_url(root, state.urls, "redis"),
        "BROKER_URL": credentials.authenticated_url(root, state.urls, "broker"),
        "HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        # /api/debug/sleep: fault drills hold requests in flight with it (docs/drills.md).
        "REFAPP_DEBUG": "1",
        # A worker killed between committing a job row and enqueueing it leaves the row
        # 'queued' until cleanup sweeps it (default: after 300 s, every 60 s). Locally,
        # sweep within a minute so `scalectl drill queue-worker-kill` sees it recovered.
        "CLEANUP_STUCK_QUEUED_SECONDS": "30",
        "CLEANUP_INTERVAL_SECONDS": "10",
    }


def app_launch(
    prepared: Prepared, state: StackState, svc: ServiceView, index: int, env: Mapping[str, str]
) -> Launch:
    """Instance `index` (1-based) of service `svc`: one gunicorn cluster on its own port."""
    root = Path(state.state_dir)
    port = int(svc.upstream_servers[index - 1].rsplit(":", 1)[1])
    name = f"{svc.name}-{index}"
    metrics_dir = root / "metrics" / name
    # Locally every instance shares this machine's cores.
    cores = os.cpu_count() or 1
    app_env = {
        **base_env(prepared, state, env),
        "SERVICE_NAME": svc.name,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(min(svc.size.processes, cores)),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "RELEASE_ID": f"local-{name}",
        # This service's own drain window (app_environment has the first service's).
        "GRACEFUL_TIMEOUT": str(svc.spec.graceful_shutdown_seconds),
    }
    argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "refapp.main:app"]
    return Launch(
        name,
        "app",
        argv,
        app_env,
        app_dir(),
        root / "logs" / f"{name}.log",
        port,
        health_url=f"http://127.0.0.1:{port}/health/ready",
        url=f"http://127.0.0.1:{port}",
        metrics_dir=metrics_dir,
        drain_seconds=svc.spec.graceful_shutdown_seconds,
    )


def worker_launch(
    prepared: Prepared, state: StackState, index: int, name: str, env: Mapping[str, str]
) -> Launch:
    """The Dramatiq worker for the plan's worker `name` (its `index` among the workers)."""
    root = Path(state.state_dir)
    worker = prepared.loaded.plan.workers[name]
    cores = os.cpu_count() or 1
    metrics_port = worker_ports(prepared)[index]
    prom_db = root / "metrics" / f"worker-{name}"
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "refapp.tasks",
        "--processes",
        str(min(worker.processes, cores)),
        "--threads",
        str(worker.threads),
        "--worker-shutdown-timeout",
        str(worker.graceful_shutdown_seconds * 1000),
        "--queues",
        *[q.name for q in worker.queues],
    ]
    worker_env = {
        **base_env(prepared, state, env),
        "SERVICE_NAME": name,
        "dramatiq_prom_host": "127.0.0.1",
        "dramatiq_prom_port": str(metrics_port),
        "dramatiq_prom_db": str(prom_db),
        # How often an idle worker thread or consumer wakes up (default 1000 ms); each one
        # notices a stop only then, so it bounds how long an idle worker takes to stop.
        "dramatiq_worker_timeout": "500",
    }
    member_name = f"worker-{name}"
    return Launch(
        member_name,
        "worker",
        argv,
        worker_env,
        app_dir(),
        root / "logs" / f"{member_name}.log",
        metrics_port,
        health_url=f"http://127.0.0.1:{metrics_port}/metrics",
        metrics_dir=prom_db,
        drain_seconds=worker.graceful_shutdown_seconds,
    )


def nginx_argv(nginx: str, prefix: Path) -> list[str]:
    conf = prefix / "conf" / "nginx.conf"
    return [nginx, "-p", f"{prefix}/", "-c", str(conf), "-g", "daemon off;"]


def prometheus_argv(prometheus: str, rendered: Path, data: Path, port: int) -> list[str]:
    return [
        prometheus,
        f"--config.file={rendered / 'prometheus' / 'prometheus.yml'}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2d",
    ]


def app_environment(prepared: Prepared) -> dict[str, str]:
    """Settings the reference app reads, from the plan (names match its fields)."""
    plan = prepared.loaded.plan
    env = dict(app_env(plan))
    first = prepared.sizing.services[0]
    if plan.database:
        env["DATABASE_POOL_MIN"] = str(first.pool_min)
        env["DATABASE_POOL_MAX"] = str(first.pool_max)
        env["DATABASE_POOL_TIMEOUT"] = f"{plan.database.pool.acquire_timeout_seconds:g}"
        env["DATABASE_STATEMENT_TIMEOUT_MS"] = str(plan.database.pool.statement_timeout_ms)
    svc = next(iter(plan.services.values()))
    env["GRACEFUL_TIMEOUT"] = str(svc.graceful_shutdown_seconds)
    return env


def connections_needed(prepared: Prepared) -> int:
    db = prepared.sizing.database
    return db.client_connections if db else 0
