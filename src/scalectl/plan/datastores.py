"""The plan's data stores: the PostgreSQL database (`database`) and the Redis cache (`cache`).

Field descriptions here become docs/plan.md and the editor-facing JSON Schema, so they
are written for the person filling in the plan.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from scalectl.plan.fieldtypes import Image, Port, Positive
from scalectl.plan.patterns import TtlKind
from scalectl.strict import Strict


class Primary(Strict):
    """`database.primary`: the primary's cores and connection limits."""

    cores: int = Field(ge=1, le=1024, description="CPU cores of the primary.")
    max_connections: int = Field(ge=1, le=100000)
    reserved_connections: int = Field(
        10, ge=0, le=100000, description="Kept free for superusers, replication and migrations."
    )


class Pool(Strict):
    """`database.pool`: each app process's connection pool and statement timeout."""

    min: int = Field(1, ge=0, le=10000, description="Connections each process keeps open.")
    max: int = Field(10, ge=1, le=10000, description="Most connections one process may open.")
    acquire_timeout_seconds: Positive = 5
    statement_timeout_ms: int = Field(5000, ge=1, le=86_400_000)


class PgBouncer(Strict):
    """`database.pgbouncer`: whether a PgBouncer sits in front of the primary, and how it pools."""

    enabled: bool = False
    pool_mode: Literal["transaction", "session", "statement"] = "transaction"
    port: Port = 6432
    reserve_pool_size: int = Field(5, ge=0, le=10000)


class Database(Strict):
    """`database`: PostgreSQL, its primary, read replicas, pools and PgBouncer."""

    image: Image = "postgres:16.4"
    primary: Primary
    read_replicas: int = Field(0, ge=0, le=32, description="Streaming replicas for reads.")
    pool: Pool = Pool()
    pgbouncer: PgBouncer = PgBouncer()


EvictionPolicy = Literal[
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
]


class Cache(Strict):
    """`cache`: the Redis cache, sized from its keys and their size, with its eviction policy and
    TTLs."""

    image: Image = "redis:7.4"
    keys: int = Field(ge=1, le=10**12, description="Keys held at peak.")
    # Redis refuses strings over 512 MB; the key and value bounds are that limit.
    mean_value_bytes: int = Field(ge=1, le=512 * 2**20)
    mean_key_bytes: int = Field(40, ge=1, le=512 * 2**20)
    per_key_overhead_bytes: int = Field(
        80,
        ge=0,
        le=2**20,
        description="Redis's own bookkeeping per key (dict entry, object headers).",
    )
    headroom: float = Field(1.3, ge=1, le=100)
    ttl_seconds: dict[TtlKind, Annotated[int, Field(ge=1, le=31_536_000)]] = Field(
        default_factory=dict, description="TTL per content type, e.g. {submission: 300}."
    )
    eviction_policy: EvictionPolicy = "allkeys-lru"
