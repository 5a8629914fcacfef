"""The schema is applied once per version of schema.sql, so an instance starting under load
takes no table lock: its CREATE INDEX IF NOT EXISTS used to take SHARE locks one table after
another and deadlock with live POSTs (a rolling restart's 503s)."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest
from refapp.migration import migrate, migrate_async

from scalectl.stack.servers import Server


def _fresh(server: Server, name: str) -> str:
    with psycopg.connect(server.url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return server.create_database(name)


@pytest.mark.stack
def test_a_current_schema_is_not_applied_again_while_writes_hold_their_locks(
    postgres_server: Server,
) -> None:
    url = _fresh(postgres_server, "refapp_migration")
    with psycopg.connect(url, autocommit=True) as conn:
        assert migrate(conn) is True  # a new database: schema.sql runs
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (1,)
    # A write in flight: ROW EXCLUSIVE on both tables a POST inserts into, held open.
    writer = psycopg.connect(url)
    writer.execute("LOCK TABLE submissions, jobs IN ROW EXCLUSIVE MODE")
    try:
        done: list[bool] = []

        def start_again() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '5s'")
                done.append(migrate(conn))

        async def start_again_async() -> bool:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute("SET lock_timeout = '5s'")
                return await migrate_async(conn)

        thread = threading.Thread(target=start_again)
        thread.start()
        thread.join(10)
        # Before: CREATE INDEX waited for the writer's lock (LockNotAvailable after 5 s).
        assert done == [False]
        assert asyncio.run(start_again_async()) is False
    finally:
        writer.close()


@pytest.mark.stack
def test_a_changed_schema_is_applied(postgres_server: Server) -> None:
    url = _fresh(postgres_server, "refapp_migration_old")
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        conn.execute("UPDATE schema_migrations SET version = 'older'")
        conn.execute("DROP INDEX jobs_status_enqueued")
        assert migrate(conn) is True
        assert conn.execute("SELECT to_regclass('jobs_status_enqueued')").fetchone() != (None,)
