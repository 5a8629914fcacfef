"""The schema (schema.sql) and the lock its migration runs under: shared by the web tier
(refapp.db) and the key admin command (refapp.keys), which must not import the metrics."""

from __future__ import annotations

from importlib import resources

# pg_advisory_lock key for the schema migration: every gunicorn worker migrates at start and
# takes the same lock, so workers starting together run schema.sql one at a time.
SCHEMA_LOCK_KEY = 0x7265_6661_7070  # "refapp"


def schema_sql() -> str:
    return resources.files("refapp").joinpath("schema.sql").read_text()
