"""Who is calling: the client IP and the API tier, as nginx hands them to us."""

from __future__ import annotations

from starlette.types import Scope

TIERS = ("premium", "basic", "free")
DEFAULT_TIER = "free"


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def client_ip(scope: Scope) -> str:
    """The first X-Forwarded-For hop (the client as nginx saw it), else the peer. The app
    listens on loopback or a private network behind nginx, which sets the header; a caller
    that reaches the app directly could forge it (see README)."""
    forwarded = header(scope, b"x-forwarded-for")
    if forwarded:
        first = forwarded.split(",", 1)[0].strip()
        if first:
            return first[:64]
    peer = scope.get("client")
    return str(peer[0]) if peer else "unknown"


def tier(scope: Scope, tier_header: str) -> str:
    """premium, basic or free (the default, also for unknown values). Trusted as sent: the
    gateway in front maps API keys to tiers."""
    value = (header(scope, tier_header.lower().encode("latin-1")) or "").strip().lower()
    return value if value in TIERS else DEFAULT_TIER


def api_key(scope: Scope) -> str | None:
    value = header(scope, b"x-api-key")
    return value[:128] if value else None


def is_exempt(path: str) -> bool:
    """Health and metrics answer even when the service refuses everything else."""
    return path == "/metrics" or path == "/health" or path.startswith("/health/")
