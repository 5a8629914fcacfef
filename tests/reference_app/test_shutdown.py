"""SIGTERM to the gunicorn master drains: requests in flight all complete, then every
process exits."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import psutil
import pytest

from scalectl.stack.servers import Server
from tests.reference_app.conftest import app_env, start_cluster

pytestmark = pytest.mark.stack


def test_sigterm_completes_requests_in_flight(
    postgres_server: Server, redis_server: Server, tmp_path: Path
) -> None:
    app = start_cluster(tmp_path, app_env(postgres_server, redis_server, SHED_MAX_IN_FLIGHT="100"))
    try:
        assert app.proc is not None
        members = app.members

        async def run() -> list[httpx.Response]:
            async with httpx.AsyncClient(
                base_url=app.url, headers=app.auth(), timeout=15
            ) as client:
                slow = [
                    asyncio.create_task(client.get("/api/debug/sleep", params={"ms": 2000}))
                    for _ in range(8)
                ]
                await asyncio.sleep(0.5)  # all accepted and sleeping
                app.proc.send_signal(signal.SIGTERM)
                return list(await asyncio.gather(*slow))

        responses = asyncio.run(run())
        assert [r.status_code for r in responses] == [200] * 8
        assert all(r.json()["slept_ms"] == 2000 for r in responses)
        assert app.proc.wait(timeout=15) == 0
        _, alive = psutil.wait_procs(members, timeout=5)
        assert not alive, alive
    finally:
        app.stop()
