"""PostgreSQL for the worker processes: one synchronous pool per process.

Dramatiq runs actors on plain threads, so the pool is psycopg_pool's sync ConnectionPool.
It is created on first use, in the process that uses it: `dramatiq --processes N` forks,
and a pool (its sockets, its background threads) must never cross a fork.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from refapp import settings

_lock = threading.Lock()
_pool: ConnectionPool | None = None
_threads: int | None = None


def set_thread_count(threads: int) -> None:
    """Called at worker boot: each consumer thread holds at most one connection at a time,
    so more than `threads` connections per process would only idle (and count against the
    database's max_connections, which the plan's sizing budgets per thread)."""
    global _threads
    _threads = threads


def _create() -> ConnectionPool:
    cfg = settings.get()
    if not cfg.database_url:
        raise RuntimeError("DATABASE_URL is not set: workers record job state in PostgreSQL")
    max_size = max(1, min(cfg.database_pool_max, _threads or cfg.database_pool_max))
    return ConnectionPool(
        cfg.database_url,
        min_size=min(cfg.database_pool_min, max_size),
        max_size=max_size,
        timeout=cfg.database_pool_timeout,
        kwargs={
            # A statement stuck on a lock or a bad plan fails the job (and it retries)
            # instead of pinning a consumer thread.
            "options": f"-c statement_timeout={cfg.database_statement_timeout_ms}",
            "connect_timeout": max(1, round(cfg.database_pool_timeout)),
            "application_name": f"refapp-worker-{os.getpid()}",
        },
        # Discard connections that died while idle (a PostgreSQL restart) before handing
        # them out, so one restart costs no failed jobs.
        check=ConnectionPool.check_connection,
        name="refapp-worker",
        open=True,
    )


def pool() -> ConnectionPool:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = _create()
    return _pool


@contextmanager
def transaction() -> Iterator[psycopg.Connection]:
    """A pooled connection inside one transaction: committed on success, rolled back on
    any exception (the pool's context manager does both)."""
    with pool().connection() as conn:
        yield conn


def close() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.close()
            _pool = None


def _forget_after_fork() -> None:
    # The child must not close or reuse the parent's sockets: drop the reference only.
    global _pool, _lock
    _pool = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
