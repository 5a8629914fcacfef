"""Who is calling, once refapp.auth has resolved the API key: the `Principal` in the ASGI
scope, how a key is read from a request, and the in-process cache of resolved keys. Pure
(no metrics, no I/O), so the shedder and limiter can import it cheaply and tests directly."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import Scope

from refapp import clients
from refapp.keys import KEY_PREFIX, MAX_KEY_LEN

SCOPE_KEY = "refapp.principal"


@dataclass(frozen=True)
class Principal:
    key_id: int
    user_id: int
    tier: str


def caller(scope: Scope) -> Principal | None:
    """The request's resolved key (None outside /api)."""
    found = scope.get(SCOPE_KEY)
    return found if isinstance(found, Principal) else None


def presented_key(scope: Scope) -> str | None:
    """The key from `Authorization: Bearer` or else `X-API-Key`; None if absent or not
    shaped like one of ours (refused without a lookup)."""
    value = None
    authorization = clients.header(scope, b"authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            value = token.strip()
    if value is None:
        value = (clients.header(scope, b"x-api-key") or "").strip()
    if not value or len(value) > MAX_KEY_LEN or not value.startswith(KEY_PREFIX):
        return None
    return value


def requires_key(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


class KeyCache:
    """A bounded LRU of key hash -> (expiry, principal), plus one for unknown keys."""

    def __init__(self, ttl: float, max_entries: int, negative_ttl: float) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max(1, max_entries)
        self._known: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._unknown: OrderedDict[bytes, float] = OrderedDict()

    def get(self, digest: bytes, *, stale: bool = False) -> tuple[bool, Principal | None]:
        """(hit, principal): a hit with None is a key known not to exist."""
        now = time.monotonic()
        entry = self._known.get(digest)
        if entry is not None and (stale or entry[0] >= now):
            self._known.move_to_end(digest)
            return True, entry[1]
        expiry = self._unknown.get(digest)
        if expiry is not None and expiry >= now and not stale:
            return True, None
        return False, None

    def put(self, digest: bytes, found: Principal | None, ttl: float | None = None) -> None:
        now = time.monotonic()
        if found is None:
            self._known.pop(digest, None)
            self._unknown[digest] = now + self.negative_ttl
            self._unknown.move_to_end(digest)
            while len(self._unknown) > self.max_entries:
                self._unknown.popitem(last=False)
            return
        self._unknown.pop(digest, None)
        self._known[digest] = (now + (self.ttl if ttl is None else min(ttl, self.ttl)), found)
        self._known.move_to_end(digest)
        while len(self._known) > self.max_entries:
            self._known.popitem(last=False)
