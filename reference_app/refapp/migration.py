"""The schema (schema.sql) and how it is applied: shared by the web tier (refapp.db) and the
key admin command (refapp.keys), which must not import the metrics.

schema.sql runs once per version, not at every start. Its CREATE INDEX IF NOT EXISTS takes a
SHARE lock on each table even when the index exists, one table after another, while a POST
holds ROW EXCLUSIVE locks on submissions and jobs: an instance starting under load (a rolling
restart) deadlocked with live POSTs, which then failed with 503. A start whose version is
already recorded takes no table lock at all."""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from typing import Any

import psycopg

# pg_advisory_lock key for the schema migration: every gunicorn worker migrates at start and
# takes the same lock, so workers starting together run schema.sql one at a time.
SCHEMA_LOCK_KEY = 0x7265_6661_7070  # "refapp"

_LOCK = "SELECT pg_advisory_xact_lock(%s)"
# Creating this table when it exists locks nothing else.
_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
)
_APPLIED = "SELECT 1 FROM schema_migrations WHERE version = %s"
_RECORD = "INSERT INTO schema_migrations (version) VALUES (%s) ON CONFLICT DO NOTHING"


def schema_sql() -> str:
    return resources.files("refapp").joinpath("schema.sql").read_text()


@functools.cache
def schema_version() -> str:
    """schema.sql's version: a digest of its text, so any change to it is applied once."""
    return hashlib.sha256(schema_sql().encode()).hexdigest()[:16]


def migrate(conn: psycopg.Connection[Any]) -> bool:
    """Apply schema.sql in one transaction unless this version is recorded as applied.
    Returns True when it ran."""
    with conn.transaction():
        conn.execute(_LOCK, (SCHEMA_LOCK_KEY,))
        conn.execute(_LEDGER)
        if conn.execute(_APPLIED, (schema_version(),)).fetchone():
            return False
        conn.execute(schema_sql().encode())
        conn.execute(_RECORD, (schema_version(),))
        return True


async def migrate_async(conn: psycopg.AsyncConnection[Any]) -> bool:
    """migrate() for an async connection."""
    async with conn.transaction():
        await conn.execute(_LOCK, (SCHEMA_LOCK_KEY,))
        await conn.execute(_LEDGER)
        if await (await conn.execute(_APPLIED, (schema_version(),))).fetchone():
            return False
        await conn.execute(schema_sql().encode())
        await conn.execute(_RECORD, (schema_version(),))
        return True
