"""The client IP as nginx hands it to us, and raw header access. Who the caller is (user
and tier) comes from its API key only: refapp.auth."""

from __future__ import annotations

from starlette.types import Scope

TIERS = ("premium", "basic", "free")
# Requests without a key (only outside /api: docs, openapi.json) are limited and shed as
# this tier.
DEFAULT_TIER = "free"


# Headers for the response, which the outermost middleware (refapp.telemetry) adds to it:
# inner middlewares append here instead of each wrapping `send` again.
RESPONSE_HEADERS = "refapp.response_headers"


def response_headers(scope: Scope) -> list[tuple[bytes, bytes]] | None:
    """The list of extra response headers to append to, or None when no outer middleware
    adds them (then wrap `send` yourself)."""
    found = scope.get(RESPONSE_HEADERS)
    return found if isinstance(found, list) else None


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


def is_exempt(path: str) -> bool:
    """Health and metrics answer even when the service refuses everything else."""
    return path == "/metrics" or path == "/health" or path.startswith("/health/")
