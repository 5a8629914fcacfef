"""Child-process driver for test_db_statements.py: refapp.db against a real PostgreSQL,
reporting what `db_queries_total` counted beside what really went over the wire.

Run as `python statements_driver.py '<json spec>'` from reference_app/ with
PROMETHEUS_MULTIPROC_DIR set (refapp's metrics need it before import, as under gunicorn).
The wire count comes from a relay between the app and PostgreSQL that reads the protocol's
frontend messages: one Query ('Q') or Execute ('E') message is one statement sent."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from refapp import store
from refapp.batching import Coalescer
from refapp.db import Database, Session, WriteNotAtomic
from refapp.models import SubmissionCreate
from refapp.settings import Settings

PROTOCOL_3 = 196608  # the StartupMessage's version code; requests before it are untyped


class Relay:
    """A TCP relay to PostgreSQL that counts the statements clients send through it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.statements = 0
        self.server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, and wait for the sessions to end (their clients have closed)."""
        assert self.server is not None
        self.server.close()
        if self._sessions:
            await asyncio.wait(self._sessions, timeout=2)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)
        server_r, server_w = await asyncio.open_connection(self.host, self.port)
        up = asyncio.create_task(self._pump(client_r, server_w, count=True))
        down = asyncio.create_task(self._pump(server_r, client_w, count=False))
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        # Either side gone: close both, as a server that ended the session would.
        for writer in (client_w, server_w):
            writer.close()
        for task in (up, down):
            task.cancel()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool
    ) -> None:
        buffer, started = b"", False
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
            if not count:
                continue
            buffer += data
            while True:
                if not started:  # untyped: SSLRequest, GSSENCRequest, StartupMessage
                    if len(buffer) < 8 or len(buffer) < int.from_bytes(buffer[:4], "big"):
                        break
                    size = int.from_bytes(buffer[:4], "big")
                    started = int.from_bytes(buffer[4:8], "big") == PROTOCOL_3
                    buffer = buffer[size:]
                    continue
                if len(buffer) < 5 or len(buffer) < 1 + int.from_bytes(buffer[1:5], "big"):
                    break
                if buffer[:1] in (b"Q", b"E"):
                    self.statements += 1
                buffer = buffer[1 + int.from_bytes(buffer[1:5], "big") :]


def counted() -> float:
    """db_queries_total over every target, read as /metrics reads it."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return sum(
        sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "db_queries_total"
    )


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    # Plain TCP, so the relay can read the messages.
    return urlunsplit(parts._replace(netloc=netloc, query="sslmode=disable&gssencmode=disable"))


def database(url: str, idle_after: float) -> Database:
    # One connection per pool: the connection a test cuts is the one the next call gets.
    return Database(
        Settings(
            database_url=url,
            database_replica_urls=[],
            database_pool_min=1,
            database_pool_max=1,
            database_check_idle_after=idle_after,
        )
    )


async def post(db: Database) -> dict[str, Any]:
    body = SubmissionCreate(title="counted", content="x")
    row = store.NewSubmission(uuid.uuid4(), uuid.uuid4(), 7, body)
    return (await db.write(lambda s: store.create_submissions(s, [row])))[0]


async def statements(spec: dict[str, Any]) -> dict[str, Any]:
    """Per call: [db_queries_total delta, statements on the wire]."""
    target = urlsplit(spec["url"])
    relay = Relay(str(target.hostname), int(target.port or 5432))
    url = through(spec["url"], await relay.start())
    db = database(url, spec["idle_after"])
    await db.open()
    out: dict[str, Any] = {}

    async def measure(name: str, call: Callable[[], Awaitable[Any]]) -> Any:
        before = (counted(), relay.statements)
        try:
            result = await call()
        except WriteNotAtomic as exc:
            result = type(exc).__name__
        await asyncio.sleep(0.05)  # the relay counts what it has read
        out[name] = [counted() - before[0], relay.statements - before[1]]
        return result

    try:
        await post(db)  # warm: the connection is open, configured and just used
        created = await measure("post", lambda: post(db))
        sid = uuid.UUID(created["id"])
        await measure("read", lambda: db.read(lambda s: store.get_submission(s, sid)))
        await measure("stats", lambda: db.read(store.stats))
        await measure("list", lambda: db.read(lambda s: store.list_user_submissions(s, 7, 5, None)))
        await measure(
            "patch", lambda: db.write(lambda s: store.update_submission(s, sid, 7, "t", None))
        )
        await measure("delete", lambda: db.write(lambda s: store.delete_submission(s, sid, 7)))

        async def two(s: Session) -> None:
            await s.execute("SELECT 1")
            await s.execute("SELECT 2")

        async def two_in_transaction(s: Session) -> None:
            async with s.transaction():
                await two(s)

        out["two_refused"] = await measure("two", lambda: db.write(two))
        await measure("two_in_transaction", lambda: db.write(two_in_transaction))
        await asyncio.sleep(spec["idle_after"] + 0.2)
        await measure("after_idle", lambda: db.read(store.stats))
    finally:
        await db.close()
        await relay.stop()
    return out


def backends(admin: psycopg.Connection[Any]) -> set[int]:
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchall()
    return {int(r[0]) for r in rows}


async def cut(spec: dict[str, Any]) -> dict[str, Any]:
    """Terminate the pool's idle connection, then write and read at once."""
    db = database(spec["url"], spec["idle_after"])
    await db.open()
    try:
        await post(db)
        with psycopg.connect(spec["url"], autocommit=True) as admin:
            before = backends(admin)
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", (list(before),)
            )
            deadline = time.monotonic() + 5
            while backends(admin) & before and time.monotonic() < deadline:
                time.sleep(0.02)
            gone = not backends(admin) & before
            time.sleep(0.05)  # the terminated backend's goodbye reaches our socket
            counted_before = counted()
            started = time.monotonic()
            created = await post(db)
            sid = uuid.UUID(created["id"])
            read = await db.read(lambda s: store.get_submission(s, sid))
            seconds = time.monotonic() - started
            after = backends(admin)
        stats = db.primary.pool.get_stats()
        return {
            "terminated": gone,
            "written": read is not None and read["title"] == "counted",
            "seconds": seconds,
            "replaced": bool(after) and not after & before,
            "connections_lost": stats.get("connections_lost", 0),
            "counted": counted() - counted_before,
        }
    finally:
        await db.close()


async def coalesce(spec: dict[str, Any]) -> dict[str, Any]:
    """POSTs through refapp.batching as the web tier sends them: what reaches PostgreSQL."""
    target = urlsplit(spec["url"])
    relay = Relay(str(target.hostname), int(target.port or 5432))
    db = database(through(spec["url"], await relay.start()), spec["idle_after"])
    await db.open()

    def coalescer(max_batch: int) -> Coalescer[store.NewSubmission, dict[str, Any]]:
        return Coalescer(
            lambda rows: db.write(lambda s: store.create_submissions(s, rows)), max_batch
        )

    def row(sid: uuid.UUID | None = None) -> store.NewSubmission:
        body = SubmissionCreate(title="coalesced", content="x")
        return store.NewSubmission(sid or uuid.uuid4(), uuid.uuid4(), 7, body)

    async def burst(writes: Coalescer[Any, Any], rows: list[store.NewSubmission]) -> list[Any]:
        before = relay.statements
        answers = await asyncio.gather(*(writes.submit(r) for r in rows), return_exceptions=True)
        await asyncio.sleep(0.05)  # the relay counts what it has read
        out["wire"].append(relay.statements - before)
        return [a["id"] if isinstance(a, dict) else type(a).__name__ for a in answers]

    out: dict[str, Any] = {"wire": []}
    try:
        await post(db)  # warm: the connection is open and just used
        rows = [row() for _ in range(20)]
        out["answers"] = await burst(coalescer(32), rows) == [str(r.id) for r in rows]
        await burst(coalescer(4), [row() for _ in range(13)])
        twice = uuid.uuid4()
        out["isolated"] = await burst(coalescer(32), [row(), row(twice), row(twice), row()])
        async with await psycopg.AsyncConnection.connect(spec["url"]) as conn:
            cur = await conn.execute(
                "SELECT count(*), count(j.id) FROM submissions s"
                " LEFT JOIN jobs j ON j.submission_id = s.id WHERE s.title = 'coalesced'"
            )
            out["rows"] = await cur.fetchone()
    finally:
        await db.close()
        await relay.stop()
    return out


if __name__ == "__main__":
    given = json.loads(sys.argv[1])
    scenario = {"statements": statements, "cut": cut, "coalesce": coalesce}[given["scenario"]]
    print(json.dumps(asyncio.run(scenario(given))))
