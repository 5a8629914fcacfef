"""Health endpoints in application/health+json (draft-inadarei-api-health-check), and
/metrics. Liveness (/health) touches nothing; the others check one dependency each, with a
time limit (HEALTH_TIMEOUT) so a hung dependency reads as `fail`, never as a hung probe.

Severity: PostgreSQL down or not migrated is `fail` (503: take this instance out of
rotation); Redis down is `fail` on its own endpoint but only `warn` for readiness and the
comprehensive report (reads fall back to PostgreSQL); queue stats unavailable is `warn`."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psutil
from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from refapp import metrics, queue_client, services
from refapp.db import Target
from refapp.models import Health
from refapp.services import Services
from refapp.shedding import memory_percent

log = logging.getLogger(__name__)

VERSION = "1"
RANK = {"pass": 0, "warn": 1, "fail": 2}
Checks = dict[str, list[dict[str, Any]]]


class HealthJSONResponse(JSONResponse):
    media_type = "application/health+json"


router = APIRouter(tags=["health"])
_HEALTH_DOC: dict[str, Any] = {
    "response_model": Health,
    "response_class": HealthJSONResponse,
    "responses": {503: {"model": Health, "description": "fail"}},
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check(
    component_type: str,
    value: Any,
    unit: str | None,
    status: str,
    *,
    component_id: str | None = None,
    output: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "componentType": component_type,
        "observedValue": value,
        "observedUnit": unit,
        "status": status,
        "time": _now(),
    }
    if component_id is not None:
        entry["componentId"] = component_id
    if output is not None:
        entry["output"] = output
    return entry


def _worst(checks: Checks) -> str:
    statuses = [c["status"] for entries in checks.values() for c in entries]
    return max(statuses, key=RANK.__getitem__, default="pass")


def _downgrade(checks: Checks, to: str = "warn") -> Checks:
    """A failing optional dependency: report it, but as `warn` for the whole."""
    return {
        name: [{**c, "status": to} if c["status"] == "fail" else c for c in entries]
        for name, entries in checks.items()
    }


def _respond(deps: Services, checks: Checks, description: str) -> HealthJSONResponse:
    status = _worst(checks)
    body = {
        "status": status,
        "version": VERSION,
        "releaseId": deps.settings.release_id,
        "serviceId": deps.settings.service_name,
        "description": description,
        "checks": checks,
    }
    return HealthJSONResponse(
        body, status_code=503 if status == "fail" else 200, headers={"Cache-Control": "no-store"}
    )


def _generic(error: BaseException | None) -> str | None:
    """What a health check says about a failure: generic words, never the exception's text,
    which names hosts, ports and the database user."""
    if error is None:
        return None
    log.info("health check failed", extra={"error": repr(error)})  # operators read logs
    if isinstance(error, TimeoutError):
        return "timed out"
    return "unreachable"


async def _timed(
    timeout: float, fn: Callable[[], Awaitable[Any]]
) -> tuple[float, BaseException | None]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            await fn()
    except Exception as exc:
        return (time.perf_counter() - started) * 1000, exc
    return (time.perf_counter() - started) * 1000, None


async def _target_checks(deps: Services, target: Target, severity: str) -> Checks:
    async def ping() -> None:
        async with target.session() as db:
            await db.execute("SELECT 1")

    ms, error = await _timed(deps.settings.health_timeout, ping)
    stats = target.pool.get_stats()
    in_use = stats.get("pool_size", 0) - stats.get("pool_available", 0)
    name = target.dependency
    return {
        f"{name}:responseTime": [
            _check(
                "datastore",
                round(ms, 2),
                "ms",
                severity if error else "pass",
                output=_generic(error),
            )
        ],
        f"{name}:connections": [
            _check(
                "datastore",
                in_use,
                "connections",
                "pass",
                output=f"pool size {stats.get('pool_size', 0)}",
            )
        ],
    }


async def database_checks(deps: Services) -> Checks:
    db = deps.db
    checks = await _target_checks(deps, db.primary, "fail")
    for replica in db.replicas:  # a lost replica costs capacity, not correctness
        checks |= await _target_checks(deps, replica, "warn")
    checks["postgresql:migrated"] = [
        _check("datastore", db.migrated, None, "pass" if db.migrated else "fail")
    ]
    return checks


async def redis_checks(deps: Services) -> Checks:
    if not deps.redis.configured:
        return {
            "redis:responseTime": [
                _check("datastore", None, "ms", "warn", output="REDIS_URL unset")
            ]
        }

    async def ping() -> None:
        async with deps.redis.guard() as client:
            await client.ping()

    ms, error = await _timed(deps.settings.health_timeout, ping)
    return {
        "redis:responseTime": [
            _check(
                "datastore",
                round(ms, 2),
                "ms",
                "fail" if error else "pass",
                output=_generic(error),
            )
        ],
        "redis:circuitBreaker": [
            _check("component", deps.redis.breaker.state.name.lower(), None, "pass")
        ],
    }


async def queue_checks(deps: Services) -> Checks:
    try:
        snapshot = await queue_client.snapshot(deps.settings.health_timeout)
    except Exception as exc:
        return {"queue:depth": [_check("component", None, None, "warn", output=_generic(exc))]}
    checks: Checks = {"queue:depth": [], "queue:oldestAge": [], "queue:deadLetters": []}
    for queue, stats in sorted(snapshot.items()):
        for key, name, unit in (
            ("depth", "queue:depth", "messages"),
            ("oldest_age_seconds", "queue:oldestAge", "s"),
            ("dead_letters", "queue:deadLetters", "messages"),
        ):
            checks[name].append(
                _check("component", stats.get(key), unit, "pass", component_id=queue)
            )
    return checks


def system_checks(deps: Services) -> Checks:
    s = deps.settings
    process = psutil.Process()
    memory = memory_percent()
    fds = process.num_fds()
    soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    lag_ms = deps.monitor.loop_lag * 1000
    return {
        "cpu:utilization": [_check("system", psutil.cpu_percent(None), "percent", "pass")],
        "memory:utilization": [
            _check(
                "system",
                round(memory, 1),
                "percent",
                "warn" if memory >= s.shed_max_memory_percent else "pass",
            )
        ],
        "system:loadAverage": [_check("system", round(os.getloadavg()[0], 2), None, "pass")],
        "process:openFileDescriptors": [
            _check(
                "system",
                fds,
                "fds",
                "warn" if soft_limit > 0 and fds >= 0.9 * soft_limit else "pass",
                output=f"soft limit {soft_limit}",
            )
        ],
        "eventLoop:lag": [
            _check(
                "system",
                round(lag_ms, 2),
                "ms",
                "warn" if lag_ms >= s.shed_max_loop_lag_ms else "pass",
            )
        ],
        "http:inFlight": [_check("system", deps.monitor.in_flight, "requests", "pass")],
    }


Deps = Depends(services.get)


@router.get("/health", **_HEALTH_DOC)
async def liveness(deps: Services = Deps) -> HealthJSONResponse:
    """The process answers. Checks nothing else: a dependency outage must not restart us."""
    return _respond(deps, {}, "liveness")


@router.get("/health/ready", **_HEALTH_DOC)
async def readiness(deps: Services = Deps) -> HealthJSONResponse:
    """Can this instance serve traffic? Not before the schema is migrated. Once it has been,
    losing one data store degrades it (warn, still 200): with PostgreSQL down the cache
    still serves reads and writes fail fast, with Redis down PostgreSQL serves reads.
    Failing readiness then would take every instance out of rotation at once and turn a
    partial outage into a total one. Only both stores down makes it unready."""
    db, redis = await asyncio.gather(database_checks(deps), redis_checks(deps))
    if deps.db.migrated and _worst(redis) != "fail":
        db = _downgrade(db)
    return _respond(deps, db | _downgrade(redis), "readiness: can serve requests")


@router.get("/health/database", **_HEALTH_DOC)
async def database(deps: Services = Deps) -> HealthJSONResponse:
    return _respond(deps, await database_checks(deps), "postgresql")


@router.get("/health/redis", **_HEALTH_DOC)
async def redis(deps: Services = Deps) -> HealthJSONResponse:
    return _respond(deps, await redis_checks(deps), "redis")


@router.get("/health/queue", **_HEALTH_DOC)
async def queue(deps: Services = Deps) -> HealthJSONResponse:
    return _respond(deps, await queue_checks(deps), "job queues")


@router.get("/health/system", **_HEALTH_DOC)
async def system(deps: Services = Deps) -> HealthJSONResponse:
    return _respond(deps, system_checks(deps), "process and host")


@router.get("/health/comprehensive", **_HEALTH_DOC)
async def comprehensive(deps: Services = Deps) -> HealthJSONResponse:
    db, redis_, queue_ = await asyncio.gather(
        database_checks(deps), redis_checks(deps), queue_checks(deps)
    )
    checks = db | _downgrade(redis_) | queue_ | system_checks(deps)
    return _respond(deps, checks, "all dependencies")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def prometheus_metrics(deps: Services = Deps) -> Response:
    try:
        snapshot = await queue_client.snapshot(deps.settings.health_timeout)
    except Exception as exc:
        log.debug("queue snapshot unavailable", extra={"error": repr(exc)})
        snapshot = None
    deps.sample()
    body = await run_in_threadpool(metrics.render, snapshot)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
