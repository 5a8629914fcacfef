"""Writes of concurrent requests in one statement (group commit in the app).

A request's row goes to the database at once when no write of its kind is in flight; rows
that arrive while one is go together in the next statement, as soon as it returns. So a
lone request waits for nothing, and under load one statement, one round trip and one
commit serve several requests. A statement that fails for one row's data is retried row
by row, so one request's bad row fails only that request."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import psycopg

In = TypeVar("In")
Out = TypeVar("Out")

# Errors of the rows themselves, not of the connection or the server: worth isolating.
_ROW_ERRORS = (psycopg.errors.DataError, psycopg.errors.IntegrityError)


class Coalescer(Generic[In, Out]):
    """`submit(item)` returns `write([.., item, ..])`'s answer for that item; `write`
    answers each batch with one result per item, in order."""

    def __init__(self, write: Callable[[list[In]], Awaitable[list[Out]]], max_batch: int) -> None:
        self._write = write
        self.max_batch = max(1, max_batch)
        self._waiting: list[tuple[In, asyncio.Future[Out]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:
            # A context of its own: the writer serves many requests, so it must not carry
            # the first one's request id into every log line it writes.
            self._writer = asyncio.create_task(
                self._drain(), name="coalesced-writes", context=contextvars.Context()
            )
        # A caller that goes away leaves its row in the batch (it may be written already,
        # as a single write cancelled mid-statement may be): only its answer is dropped.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
                try:
                    await self._run(batch)
                finally:  # cancelled mid-batch (row by row too): none of it is left waiting
                    for _, future in batch:
                        future.cancel()
        finally:
            self._writer = None
            for _, future in self._waiting:  # only if this task itself was cancelled
                if not future.done():
                    future.set_exception(RuntimeError("writer stopped"))
            self._waiting.clear()

    async def _run(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except _ROW_ERRORS as exc:
            if len(batch) == 1:
                _fail(batch[0][1], exc)
                return
            for one in batch:  # whose row was it: each alone
                await self._run([one])
            return
        except Exception as exc:
            for _, future in batch:
                _fail(future, exc)
            return
        except BaseException:  # cancelled (shutdown): so are its callers
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _fail(future: asyncio.Future[Out], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
