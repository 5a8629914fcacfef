"""Every setting comes from an environment variable whose name matches the plan field it
is sized from (scalectl plan renders them into Kubernetes and Compose). One frozen object,
read once per process."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _with_password(url: str) -> str:
    """Add the password from DATABASE_PASSWORD_FILE (a mounted secret) to the URL."""
    path = os.environ.get("DATABASE_PASSWORD_FILE")
    if not path or not url:
        return url
    from urllib.parse import quote, urlsplit, urlunsplit

    password = Path(path).read_text().strip()
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


# A rate limit: a whole count per second, minute, hour or day, as scalectl's plans write it
# (scalectl.plan.patterns.RATE; tests/plan/test_rate_limits.py holds the two to one set).
# limits.parse alone would also take "5 per 2 hours" or "1/year" (360 days), and keep only
# the first of "1/second;100/minute".
RateText = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,10}/(second|minute|hour|day)$")]


class Settings(BaseSettings):
    """The app's settings, each from the environment variable named as the field in capitals
    (`port` from PORT) unless its alias says otherwise, else the default.

    Python callers name fields (`Settings(broker_url=...)`). Raises pydantic's
    ValidationError, located at the variable's name, when a value does not parse."""

    # Exact names only: the aliases are the variables, and a field's own (lower-case) name is
    # never read from the environment.
    model_config = SettingsConfigDict(
        alias_generator=str.upper,
        case_sensitive=True,
        validate_by_alias=True,
        validate_by_name=False,
        frozen=True,
    )

    service_name: str = "api"
    release_id: str = "dev"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    # Access log lines (refapp.telemetry): one in ACCESS_LOG_EVERY fast successful requests;
    # every error and every request slower than ACCESS_LOG_SLOW_MS is logged.
    access_log_every: int = Field(default=1, ge=1, le=1_000_000)
    access_log_slow_ms: float = Field(default=500, ge=0)

    # gunicorn (services.<name>.processes, graceful_shutdown_seconds)
    web_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1)
    graceful_timeout: int = 30
    max_requests: int = 100000
    max_requests_jitter: int = 10000

    # PostgreSQL (database.*). URLs may hold passwords: repr=False keeps them out of the
    # repr that logs and tracebacks show.
    database_url: str = Field(default="", repr=False)
    # Comma-separated (NoDecode: not JSON, as pydantic-settings would read a list)
    database_replica_urls: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    database_pool_min: int = 1
    database_pool_max: int = 10
    database_pool_timeout: float = 5
    database_statement_timeout_ms: int = 5000

    # Redis: cache and rate limits (cache.*), and the Dramatiq broker (workers.*; REDIS_URL
    # when BROKER_URL is unset or empty)
    redis_url: str = Field(default="", repr=False)
    broker_url: str = Field(default="", repr=False, validate_default=True)

    # cache.ttl_seconds.<type> -> CACHE_TTL_<TYPE>
    cache_ttl_submission: int = 300
    cache_ttl_user_submissions: int = 60
    cache_ttl_stats: int = 30
    cache_ttl_job: int = 5
    cache_l1_ttl: float = 2

    # load_balancer.rate_limits.* (limits' notation: "50/second")
    rate_limit_per_ip: RateText = "100/second"
    rate_limit_tier_premium: RateText = "200/second"
    rate_limit_tier_basic: RateText = "50/second"
    rate_limit_tier_free: RateText = "10/second"
    # Requests one Redis round trip may admit for a key at most (refapp.ratelimit leases);
    # 1 asks Redis on every request.
    rate_limit_lease_max: int = Field(default=64, ge=1, le=1024)
    # Rendered by plans for the gateway; the app never reads a tier from it (refapp.auth).
    tier_header: str = "X-API-Tier"

    # API keys (refapp.auth): how long a worker trusts a resolved key (the revocation delay),
    # how long it remembers an unknown one, and how many of each it keeps.
    api_key_cache_ttl: float = 30
    api_key_negative_ttl: float = 5
    api_key_cache_max: int = 10000
    # How long Redis keeps a copy of a resolved key for use while PostgreSQL is down.
    api_key_outage_ttl: int = 600

    # Load shedding (refapp.shedding), per worker: free-tier requests are refused from
    # shed_max_in_flight requests in flight, basic from 1.5x, premium from 2x (the most a
    # worker holds). 22: Little's law on the reference plan, 150 rps per worker (300 per
    # 2-process replica) x the 300 ms p95 objective = 45 in flight at most, half for free.
    # Memory likewise from shed_max_memory_percent. The loop lag no longer sheds:
    # shed_max_loop_lag_ms is where /health/system warns.
    shed_max_in_flight: int = 22
    shed_max_loop_lag_ms: float = 200
    shed_max_memory_percent: float = 90

    # Circuit breakers around Redis and PostgreSQL
    breaker_failure_threshold: int = 3
    breaker_reset_seconds: float = 2

    # Dramatiq: redelivery of jobs whose worker died (heartbeat + maintenance)
    broker_heartbeat_ms: int = 5000
    broker_maintenance_chance: int = 100000
    job_max_retries: int = 3
    job_min_backoff_ms: int = 500
    job_max_backoff_ms: int = 30000
    cleanup_interval_seconds: float = 60
    # Queue side (refapp.tasks): Dramatiq's TimeLimit and AgeLimit, the cleanup job's
    # thresholds, and the CPU cost of an analysis (sha256 rounds, ~0.4 s per million).
    job_time_limit_ms: int = 600000
    job_max_age_ms: int = 86400000
    cleanup_deleted_after_seconds: float = 86400
    cleanup_stuck_queued_seconds: float = 300
    analysis_work_factor: int = 100000
    # How much a queue worker lowers its CPU priority (refapp.tasks.Niceness): 0 leaves it.
    worker_nice: int = Field(default=0, ge=0, le=19)
    # The outbox relay (refapp.outbox) waits for a notification at most this long before it
    # looks for unsent job rows anyway (a missed notification, a relay that died).
    outbox_poll_seconds: float = Field(default=1, gt=0, le=60)
    # Off: the relay only polls. For a DATABASE_URL behind PgBouncer's transaction pooling,
    # which does not deliver notifications (a LISTEN outlives its transaction there).
    outbox_listen: bool = True

    prometheus_multiproc_dir: str = ""

    # Added for the web tier (refapp.main). Fail-fast budgets: a dead dependency must cost
    # a request well under a second, so connect and socket timeouts stay short.
    # REFAPP_DEBUG: on only when exactly "1" (a stray DEBUG or "true" must not mount routes).
    debug: bool = Field(default=False, alias="REFAPP_DEBUG")
    database_connect_timeout: float = 2
    database_read_retries: int = 3
    # A pooled connection used less than this many seconds ago, idle and with nothing to read
    # on its socket, is handed out without a round trip (refapp.pgcheckout); 0: always check.
    database_check_idle_after: float = 5
    # POSTs that arrive while one's INSERT is in flight go together in the next statement,
    # at most this many rows (refapp.batching); 1: one row per statement (still one
    # statement at a time per worker).
    database_write_batch_max: int = Field(default=32, ge=1, le=1000)
    redis_socket_timeout: float = 0.5
    redis_max_connections: int = 100
    cache_l1_max_entries: int = 1024
    # Stampede guard: how long the recompute lock lives and how long others wait for it.
    cache_lock_ms: int = 2000
    cache_lock_wait_ms: int = 300
    health_timeout: float = 1

    def __init__(self, **values: Any) -> None:
        # Validation goes by alias only, so that the environment is read by exact name; the
        # field names Python callers pass are mapped onto those aliases here.
        fields = type(self).model_fields
        super().__init__(
            **{(fields[k].alias or k) if k in fields else k: v for k, v in values.items()}
        )

    @field_validator("database_replica_urls", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _url_with_password(cls, value: str) -> str:
        return _with_password(value)

    @field_validator("database_replica_urls")
    @classmethod
    def _urls_with_password(cls, value: list[str]) -> list[str]:
        return [_with_password(url) for url in value]

    @field_validator("broker_url")
    @classmethod
    def _broker_or_redis(cls, value: str, info: ValidationInfo) -> str:
        return value or str(info.data.get("redis_url", ""))

    @field_validator("debug", mode="before")
    @classmethod
    def _debug_only_when_1(cls, value: object) -> object:
        return value == "1" if isinstance(value, str) else value


@functools.cache
def get() -> Settings:
    """This process's settings, read from the environment on first use.

    Raises pydantic.ValidationError naming each variable whose value does not parse."""
    return Settings()
