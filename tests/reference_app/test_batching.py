"""refapp.batching.Coalescer on its own (the database side is in test_db_statements.py):
no caller is left waiting when the writer is cancelled, and the writer's log lines do not
carry one request's id."""

from __future__ import annotations

import asyncio

import psycopg
from refapp.batching import Coalescer
from refapp.logs import request_id


def test_cancelling_the_writer_mid_batch_answers_every_caller() -> None:
    async def scenario() -> list[str]:
        started = asyncio.Event()

        async def write(rows: list[int]) -> list[int]:
            if len(rows) > 1:  # the batch fails on a row's data: each row goes alone
                raise psycopg.errors.UniqueViolation("duplicate key")
            started.set()
            await asyncio.sleep(3600)  # the first row alone hangs until cancelled
            return rows

        writes: Coalescer[int, int] = Coalescer(write, 32)
        callers = [asyncio.create_task(writes.submit(n)) for n in range(3)]
        await asyncio.wait_for(started.wait(), 5)
        assert writes._writer is not None
        writes._writer.cancel()
        done, pending = await asyncio.wait(callers, timeout=2)
        assert not pending, "callers left waiting"
        return [type(t.exception()).__name__ if not t.cancelled() else "cancelled" for t in done]

    assert asyncio.run(scenario()) == ["cancelled"] * 3


def test_the_writer_does_not_carry_the_first_callers_request_id() -> None:
    async def scenario() -> list[str | None]:
        seen: list[str | None] = []

        async def write(rows: list[str]) -> list[str]:
            seen.append(request_id.get())
            await asyncio.sleep(0)
            return rows

        writes: Coalescer[str, str] = Coalescer(write, 32)

        async def caller(rid: str) -> str:
            request_id.set(rid)
            return await writes.submit(rid)

        answers = await asyncio.gather(*(caller(f"req-{n}") for n in range(4)))
        assert answers == [f"req-{n}" for n in range(4)]  # each its own row's answer
        return seen

    assert asyncio.run(scenario()) == [None]
