"""Endpoints for tests only, mounted when REFAPP_DEBUG=1 and left out of the OpenAPI
document."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

from fastapi import APIRouter, Query

router = APIRouter(prefix="/api/debug", include_in_schema=False)


@router.get("/sleep")
async def sleep(ms: Annotated[int, Query(ge=0, le=60_000)] = 100) -> dict[str, int]:
    """A slow request without load: for graceful-shutdown and shedding tests."""
    await asyncio.sleep(ms / 1000)
    return {"slept_ms": ms, "pid": os.getpid()}
