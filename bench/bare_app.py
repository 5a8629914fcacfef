"""The floor for bench/stack_bench.py: a bare FastAPI route, no middleware, no cache, no
database, answering a JSON body shaped and sized like a submission. It runs under the same
gunicorn worker class and worker count as one reference-app instance, so the ratio of the
two measures what the app's patterns cost, not what this machine can do."""

from __future__ import annotations

from uuid import UUID

from fastapi import FastAPI

# Native OpenTelemetry off, as in the reference app: it checks its providers per request.
app = FastAPI(
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
    telemetry={"tracing": False, "metrics": False, "logs": False},
)

_BODY = {
    "user_id": 1000,
    "title": "cv 1",
    "content": "python " * 50,
    "priority": "default",
    "status": "analysed",
    "score": 0.5,
    "created_at": "2026-12-05T00:00:00+00:00",
    "updated_at": "2026-12-05T00:00:00+00:00",
}


@app.get("/bare/{item_id}")
async def bare(item_id: UUID) -> dict[str, object]:
    return {"id": str(item_id), **_BODY}
