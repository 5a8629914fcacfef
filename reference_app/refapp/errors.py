"""Error responses: the JSON body every 4xx/5xx carries, dependency failures mapped to 503
with Retry-After, and a raw-ASGI sender for the middlewares that answer before routing."""

from __future__ import annotations

import json
import logging

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.types import Send

from refapp.breaker import CircuitOpenError

log = logging.getLogger(__name__)


class ServiceUnavailable(Exception):
    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


def _unavailable(detail: str, retry_after: int) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status_code=503, headers={"Retry-After": str(retry_after)}
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(CircuitOpenError)
    async def circuit_open(_: Request, exc: CircuitOpenError) -> JSONResponse:
        return _unavailable(f"{exc.dependency} is unavailable", exc.retry_after)

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(_: Request, exc: ServiceUnavailable) -> JSONResponse:
        return _unavailable(exc.detail, exc.retry_after)

    @app.exception_handler(PoolTimeout)
    async def pool_timeout(_: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("database pool exhausted", extra={"error": str(exc)})
        return _unavailable("database is busy", 1)

    @app.exception_handler(psycopg.OperationalError)
    async def database_down(_: Request, exc: psycopg.OperationalError) -> JSONResponse:
        log.warning("database error", extra={"error": str(exc), "sqlstate": exc.sqlstate})
        return _unavailable("database is unavailable", 1)


async def send_json(
    send: Send, status: int, body: dict[str, object], headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})
