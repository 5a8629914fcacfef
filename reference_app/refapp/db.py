"""PostgreSQL access: psycopg 3 async pools for the primary and any read replicas, each
behind a circuit breaker, with retries for idempotent reads and the schema migration.

Every statement goes through `Session`, which counts it in `db_queries_total{target}`, so a
test can prove a cached read sent nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from refapp.breaker import CircuitBreaker
from refapp.metrics import DB_POOL_CONNECTIONS, DB_POOL_SIZE, DB_POOL_WAITING, DB_QUERIES
from refapp.migration import migrate_async
from refapp.pgcheckout import CheckoutCheck
from refapp.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
Row = dict[str, Any]
Conn = psycopg.AsyncConnection[Row]

# A connection request still unanswered after this long triggers a probe of the server.
ACQUIRE_PROBE_AFTER = 0.25


class WriteNotAtomic(RuntimeError):
    """A write sent a second statement outside a transaction: a bug in the write."""


class Session:
    """A connection that counts what it sends.

    The connection is in autocommit. A session made with `one_statement=True` (a write)
    refuses a second statement outside `transaction()`: alone, a statement runs in an
    implicit transaction of its own; two in a row would commit separately."""

    def __init__(self, conn: Conn, target: str, *, one_statement: bool = False) -> None:
        self.conn = conn
        self._counter = DB_QUERIES.labels(target)
        self._one_statement = one_statement
        self._sent = 0  # statements sent outside a transaction
        self._in_transaction = False

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._one_statement and self._sent:
            raise WriteNotAtomic("a write opens its transaction before its first statement")
        self._counter.inc(2)  # BEGIN, then COMMIT or ROLLBACK
        self._in_transaction = True
        try:
            async with self.conn.transaction():
                yield
        finally:
            self._in_transaction = False
            self._sent += 1  # nothing may follow the transaction outside it

    def _count(self) -> None:
        if not self._in_transaction:
            if self._one_statement and self._sent:
                raise WriteNotAtomic("a write of several statements needs db.transaction()")
            self._sent += 1
        self._counter.inc()

    async def execute(self, sql: str | bytes, params: Sequence[Any] | None = None) -> int:
        self._count()
        cur = await self.conn.execute(sql, params)
        return cur.rowcount

    async def fetchone(self, sql: str, params: Sequence[Any] | None = None) -> Row | None:
        self._count()
        cur = await self.conn.execute(sql, params)
        return await cur.fetchone()

    async def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[Row]:
        self._count()
        cur = await self.conn.execute(sql, params)
        return await cur.fetchall()


# SQLSTATEs that mean the connection, not the statement, failed: class 08 (connection
# exception) and the server shutting down or starting (57P01-57P03).
_SHUTDOWN_STATES = frozenset({"57P01", "57P02", "57P03"})


def connection_lost(exc: BaseException) -> bool:
    """The server was unreachable or went away, as opposed to an error in one statement
    (a constraint, a statement timeout) or a saturated pool (PoolTimeout)."""
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, PoolTimeout):
        state = exc.sqlstate
        return state is None or state.startswith("08") or state in _SHUTDOWN_STATES
    return False


class Target:
    """One server (the primary or a replica): its pool and its breaker."""

    def __init__(self, settings: Settings, conninfo: str, *, label: str, dependency: str) -> None:
        self.settings = settings
        self.conninfo = conninfo
        self.label = label  # db_queries_total{target}
        self.dependency = dependency  # circuit_breaker_state{dependency}
        self.checkout = CheckoutCheck(settings.database_check_idle_after)
        self.pool = self._new_pool()
        self._confirming: asyncio.Task[None] | None = None
        self.breaker = CircuitBreaker(
            dependency,
            failure_threshold=settings.breaker_failure_threshold,
            reset_seconds=settings.breaker_reset_seconds,
            probe=self.probe,
            on_recover=self._replace_pool,
            probe_timeout=max(1.0, settings.database_connect_timeout),
        )

    def _new_pool(self) -> AsyncConnectionPool[Conn]:
        s = self.settings
        return AsyncConnectionPool(
            self.conninfo,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "connect_timeout": max(1, round(s.database_connect_timeout)),
                "application_name": s.service_name,
            },
            min_size=s.database_pool_min,
            max_size=max(s.database_pool_min, s.database_pool_max),
            timeout=s.database_pool_timeout,
            configure=self._configure,
            check=self._check,
            name=self.dependency,
            open=False,
        )

    async def open(self) -> None:
        # wait=False: a worker must start (and serve cached reads) while PostgreSQL is down.
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.breaker.aclose()
        await self.pool.close(timeout=1)

    async def _configure(self, conn: Conn) -> None:
        DB_QUERIES.labels(self.label).inc()
        await conn.execute(
            "SELECT set_config('statement_timeout', %s, false)",
            (str(self.settings.database_statement_timeout_ms),),
        )
        self.checkout.good(conn)

    async def _check(self, conn: Conn) -> None:
        # A connection just used, idle and quiet goes out unchecked (refapp.pgcheckout):
        # otherwise every statement under load would cost a second round trip.
        if self.checkout.trusted(conn):
            return
        DB_QUERIES.labels(self.label).inc()
        try:
            await AsyncConnectionPool.check_connection(conn)
        except Exception:
            self.checkout.lost()
            # A dead pooled connection is either one idle connection that was cut, or the
            # server gone. A fresh connection tells which; if the server is gone, open the
            # breaker now so this request (waiting in getconn) answers 503 at once instead of
            # after the pool timeout.
            await self._confirm_down()
            raise

    def _background_confirm(self) -> asyncio.Task[None]:
        """One probe at a time, however many requests ask for it."""
        if self._confirming is None or self._confirming.done():
            self._confirming = asyncio.create_task(self._probe_or_trip())
        return self._confirming

    async def _confirm_down(self) -> None:
        await asyncio.shield(self._background_confirm())

    async def _probe_or_trip(self) -> None:
        try:
            async with asyncio.timeout(self.settings.database_connect_timeout):
                await self.probe()
        except Exception as exc:
            self.breaker.trip(exc)

    async def probe(self) -> None:
        """A fresh connection and a SELECT 1, outside the pool."""
        conn = await psycopg.AsyncConnection.connect(
            self.conninfo,
            autocommit=True,
            connect_timeout=max(1, round(self.settings.database_connect_timeout)),
        )
        async with conn:
            DB_QUERIES.labels(self.label).inc()
            await conn.execute("SELECT 1")

    async def _replace_pool(self) -> None:
        """After an outage the old pool holds dead connections and reconnect attempts
        scheduled with exponential backoff; a new pool serves as soon as the server does."""
        new = self._new_pool()
        try:
            await new.open(wait=True, timeout=max(1.0, self.settings.database_connect_timeout))
        except BaseException:
            await new.close(timeout=0)
            raise
        old, self.pool = self.pool, new
        asyncio.get_running_loop().create_task(old.close(timeout=5))

    async def _acquire(self) -> Conn:
        """pool.getconn(), abandoned as soon as the breaker opens: requests queued for a
        connection must not wait out the pool timeout once the server is known down."""
        pool = self.pool
        getter = asyncio.ensure_future(pool.getconn())
        opened = asyncio.ensure_future(self.breaker.wait_open())
        try:
            done, _ = await asyncio.wait(
                {getter, opened}, timeout=ACQUIRE_PROBE_AFTER, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                # Still waiting: the pool may be empty and reconnecting to a dead server
                # (nothing to health-check, so nothing trips the breaker). Probe, in the
                # background; if the server is gone the breaker opens and we stop waiting.
                self._background_confirm()
                await asyncio.wait({getter, opened}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            getter.cancel()
            raise
        finally:
            opened.cancel()
        if not getter.done():
            getter.cancel()
            with contextlib.suppress(BaseException):
                await pool.putconn(await getter)
            self.breaker.check()
        return getter.result()

    @contextlib.asynccontextmanager
    async def session(self, *, one_statement: bool = False) -> AsyncIterator[Session]:
        self.breaker.check()
        pool = self.pool
        conn: Conn | None = None
        try:
            conn = await self._acquire()
            yield Session(conn, self.label, one_statement=one_statement)
        except PoolTimeout:
            # Saturation or an outage? Only a failed fresh connection opens the breaker, so
            # a busy pool does not turn into an outage of its own.
            await self._confirm_down()
            raise
        except Exception as exc:
            if connection_lost(exc):
                self.checkout.lost()
                self.breaker.record_failure(exc)
            elif conn is not None:
                self.checkout.good(conn)
            raise
        else:
            self.checkout.good(conn)
            self.breaker.record_success()
        finally:
            if conn is not None:
                await pool.putconn(conn)


TRANSIENT = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.primary = Target(
            settings, settings.database_url, label="primary", dependency="postgresql"
        )
        self.replicas = [
            Target(settings, url, label="replica", dependency=f"postgresql-replica-{i}")
            for i, url in enumerate(settings.database_replica_urls)
        ]
        self.migrated = False
        self._migrator: asyncio.Task[None] | None = None

    @property
    def targets(self) -> list[Target]:
        return [self.primary, *self.replicas]

    async def open(self) -> None:
        for target in self.targets:
            await target.open()
        # Try once now so a healthy start is ready at once; keep trying in the background
        # if PostgreSQL is not up yet (a failed lifespan would stop gunicorn altogether).
        self._migrator = asyncio.create_task(self._migrate_until_done(), name="migrate")
        with contextlib.suppress(Exception, TimeoutError):
            await asyncio.wait_for(
                asyncio.shield(self._migrator), self.settings.database_pool_timeout
            )

    async def close(self) -> None:
        if self._migrator is not None:
            self._migrator.cancel()
            with contextlib.suppress(BaseException):
                await self._migrator
        for target in self.targets:
            await target.close()

    async def _migrate_until_done(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.migrate()
                return
            except Exception as exc:
                log.warning("schema migration failed; retrying", extra={"error": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def migrate(self) -> None:
        """schema.sql, once per version (refapp.migration says why not at every start)."""
        async with self.primary.session() as db:
            ran = await migrate_async(db.conn)
        self.migrated = True
        log.info("schema migrated" if ran else "schema is current")

    def _reader(self) -> Target:
        healthy = [r for r in self.replicas if r.breaker.closed]
        return random.choice(healthy) if healthy else self.primary

    async def read(self, fn: Callable[[Session], Awaitable[T]]) -> T:
        """Run an idempotent read on a replica (or the primary), retrying transient errors
        with capped, jittered exponential backoff. Not retried: an open breaker and a pool
        timeout (the pool is saturated; retrying would add load where there is none to
        spare)."""
        attempts = max(1, self.settings.database_read_retries)
        for attempt in range(attempts):
            target = self._reader()
            try:
                async with target.session() as db:
                    return await fn(db)
            except (psycopg.OperationalError, OSError) as exc:
                retry = isinstance(exc, TRANSIENT) or connection_lost(exc)
                if not retry or attempt == attempts - 1:
                    raise
                await asyncio.sleep(random.uniform(0, min(0.5, 0.05 * 2**attempt)))
        raise AssertionError("unreachable")

    async def write(self, fn: Callable[[Session], Awaitable[T]]) -> T:
        """Run `fn` on the primary, not retried (the caller may not be idempotent).

        A single statement goes in autocommit: PostgreSQL runs it in an implicit
        transaction of its own, atomic and committed exactly as durably as by COMMIT, so
        BEGIN and COMMIT would add two round trips and nothing else. A write of several
        statements opens `db.transaction()` before its first; the session raises
        WriteNotAtomic (before sending) on a second statement outside one."""
        async with self.primary.session(one_statement=True) as db:
            return await fn(db)

    def sample_pool_metrics(self) -> None:
        size = available = waiting = 0
        for target in self.targets:
            stats = target.pool.get_stats()
            size += stats.get("pool_size", 0)
            available += stats.get("pool_available", 0)
            waiting += stats.get("requests_waiting", 0)
        DB_POOL_SIZE.set(size)
        DB_POOL_CONNECTIONS.labels("idle").set(available)
        DB_POOL_CONNECTIONS.labels("in_use").set(max(0, size - available))
        DB_POOL_WAITING.set(waiting)
