"""Every setting comes from an environment variable whose name matches the plan field it
is sized from (scalectl plan renders them into Kubernetes and Compose). One frozen object,
read once per process."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


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


@dataclass(frozen=True)
class Settings:
    service_name: str = field(default_factory=lambda: os.environ.get("SERVICE_NAME", "api"))
    release_id: str = field(default_factory=lambda: os.environ.get("RELEASE_ID", "dev"))
    host: str = field(default_factory=lambda: os.environ.get("HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _int("PORT", 8000))
    log_level: str = field(default_factory=lambda: os.environ.get("LOG_LEVEL", "info"))

    # gunicorn (services.<name>.processes, graceful_shutdown_seconds)
    web_concurrency: int = field(
        default_factory=lambda: _int("WEB_CONCURRENCY", os.cpu_count() or 1)
    )
    graceful_timeout: int = field(default_factory=lambda: _int("GRACEFUL_TIMEOUT", 30))
    max_requests: int = field(default_factory=lambda: _int("MAX_REQUESTS", 10000))
    max_requests_jitter: int = field(default_factory=lambda: _int("MAX_REQUESTS_JITTER", 1000))

    # PostgreSQL (database.*). URLs may hold passwords: repr=False keeps them out of the
    # repr that logs and tracebacks show.
    database_url: str = field(
        default_factory=lambda: _with_password(os.environ.get("DATABASE_URL", "")), repr=False
    )
    database_replica_urls: list[str] = field(
        default_factory=lambda: [_with_password(u) for u in _list("DATABASE_REPLICA_URLS")],
        repr=False,
    )
    database_pool_min: int = field(default_factory=lambda: _int("DATABASE_POOL_MIN", 1))
    database_pool_max: int = field(default_factory=lambda: _int("DATABASE_POOL_MAX", 10))
    database_pool_timeout: float = field(default_factory=lambda: _float("DATABASE_POOL_TIMEOUT", 5))
    database_statement_timeout_ms: int = field(
        default_factory=lambda: _int("DATABASE_STATEMENT_TIMEOUT_MS", 5000)
    )

    # Redis: cache and rate limits (cache.*), and the Dramatiq broker (workers.*)
    redis_url: str = field(default_factory=lambda: os.environ.get("REDIS_URL", ""), repr=False)
    broker_url: str = field(
        default_factory=lambda: os.environ.get("BROKER_URL") or os.environ.get("REDIS_URL", ""),
        repr=False,
    )

    # cache.ttl_seconds.<type> -> CACHE_TTL_<TYPE>
    cache_ttl_submission: int = field(default_factory=lambda: _int("CACHE_TTL_SUBMISSION", 300))
    cache_ttl_user_submissions: int = field(
        default_factory=lambda: _int("CACHE_TTL_USER_SUBMISSIONS", 60)
    )
    cache_ttl_stats: int = field(default_factory=lambda: _int("CACHE_TTL_STATS", 30))
    cache_ttl_job: int = field(default_factory=lambda: _int("CACHE_TTL_JOB", 5))
    cache_l1_ttl: float = field(default_factory=lambda: _float("CACHE_L1_TTL", 2))

    # load_balancer.rate_limits.* (limits' notation: "50/second")
    rate_limit_per_ip: str = field(
        default_factory=lambda: os.environ.get("RATE_LIMIT_PER_IP", "100/second")
    )
    rate_limit_tier_premium: str = field(
        default_factory=lambda: os.environ.get("RATE_LIMIT_TIER_PREMIUM", "200/second")
    )
    rate_limit_tier_basic: str = field(
        default_factory=lambda: os.environ.get("RATE_LIMIT_TIER_BASIC", "50/second")
    )
    rate_limit_tier_free: str = field(
        default_factory=lambda: os.environ.get("RATE_LIMIT_TIER_FREE", "10/second")
    )
    # Rendered by plans for the gateway; the app never reads a tier from it (refapp.auth).
    tier_header: str = field(default_factory=lambda: os.environ.get("TIER_HEADER", "X-API-Tier"))

    # API keys (refapp.auth): how long a worker trusts a resolved key (the revocation delay),
    # how long it remembers an unknown one, and how many of each it keeps.
    api_key_cache_ttl: float = field(default_factory=lambda: _float("API_KEY_CACHE_TTL", 30))
    api_key_negative_ttl: float = field(default_factory=lambda: _float("API_KEY_NEGATIVE_TTL", 5))
    api_key_cache_max: int = field(default_factory=lambda: _int("API_KEY_CACHE_MAX", 10000))
    # How long Redis keeps a copy of a resolved key for use while PostgreSQL is down.
    api_key_outage_ttl: int = field(default_factory=lambda: _int("API_KEY_OUTAGE_TTL", 600))

    # Load shedding thresholds
    shed_max_in_flight: int = field(default_factory=lambda: _int("SHED_MAX_IN_FLIGHT", 200))
    shed_max_loop_lag_ms: float = field(default_factory=lambda: _float("SHED_MAX_LOOP_LAG_MS", 200))
    shed_max_memory_percent: float = field(
        default_factory=lambda: _float("SHED_MAX_MEMORY_PERCENT", 90)
    )

    # Circuit breakers around Redis and PostgreSQL
    breaker_failure_threshold: int = field(
        default_factory=lambda: _int("BREAKER_FAILURE_THRESHOLD", 3)
    )
    breaker_reset_seconds: float = field(default_factory=lambda: _float("BREAKER_RESET_SECONDS", 2))

    # Dramatiq: redelivery of jobs whose worker died (see FACTS: heartbeat + maintenance)
    broker_heartbeat_ms: int = field(default_factory=lambda: _int("BROKER_HEARTBEAT_MS", 5000))
    broker_maintenance_chance: int = field(
        default_factory=lambda: _int("BROKER_MAINTENANCE_CHANCE", 100000)
    )
    job_max_retries: int = field(default_factory=lambda: _int("JOB_MAX_RETRIES", 3))
    job_min_backoff_ms: int = field(default_factory=lambda: _int("JOB_MIN_BACKOFF_MS", 500))
    job_max_backoff_ms: int = field(default_factory=lambda: _int("JOB_MAX_BACKOFF_MS", 30000))
    cleanup_interval_seconds: float = field(
        default_factory=lambda: _float("CLEANUP_INTERVAL_SECONDS", 60)
    )
    # Queue side (refapp.tasks): Dramatiq's TimeLimit and AgeLimit, the cleanup job's
    # thresholds, and the CPU cost of an analysis (sha256 rounds, ~0.4 s per million).
    job_time_limit_ms: int = field(default_factory=lambda: _int("JOB_TIME_LIMIT_MS", 600000))
    job_max_age_ms: int = field(default_factory=lambda: _int("JOB_MAX_AGE_MS", 86400000))
    cleanup_deleted_after_seconds: float = field(
        default_factory=lambda: _float("CLEANUP_DELETED_AFTER_SECONDS", 86400)
    )
    cleanup_stuck_queued_seconds: float = field(
        default_factory=lambda: _float("CLEANUP_STUCK_QUEUED_SECONDS", 300)
    )
    analysis_work_factor: int = field(default_factory=lambda: _int("ANALYSIS_WORK_FACTOR", 100000))

    prometheus_multiproc_dir: str = field(
        default_factory=lambda: os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    )

    # Added for the web tier (refapp.main). Fail-fast budgets: a dead dependency must cost
    # a request well under a second, so connect and socket timeouts stay short.
    debug: bool = field(default_factory=lambda: os.environ.get("REFAPP_DEBUG", "") == "1")
    database_connect_timeout: float = field(
        default_factory=lambda: _float("DATABASE_CONNECT_TIMEOUT", 2)
    )
    database_read_retries: int = field(default_factory=lambda: _int("DATABASE_READ_RETRIES", 3))
    redis_socket_timeout: float = field(default_factory=lambda: _float("REDIS_SOCKET_TIMEOUT", 0.5))
    redis_max_connections: int = field(default_factory=lambda: _int("REDIS_MAX_CONNECTIONS", 100))
    cache_l1_max_entries: int = field(default_factory=lambda: _int("CACHE_L1_MAX_ENTRIES", 1024))
    # Stampede guard: how long the recompute lock lives and how long others wait for it.
    cache_lock_ms: int = field(default_factory=lambda: _int("CACHE_LOCK_MS", 2000))
    cache_lock_wait_ms: int = field(default_factory=lambda: _int("CACHE_LOCK_WAIT_MS", 300))
    enqueue_timeout: float = field(default_factory=lambda: _float("ENQUEUE_TIMEOUT", 1))
    health_timeout: float = field(default_factory=lambda: _float("HEALTH_TIMEOUT", 1))


@functools.cache
def get() -> Settings:
    return Settings()
