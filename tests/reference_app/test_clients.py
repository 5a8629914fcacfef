"""How the app identifies callers (pure functions; no servers)."""

from __future__ import annotations

from typing import Any

import pytest
from refapp import clients, principal


def scope(*headers: tuple[str, str], peer: str = "10.0.0.9") -> dict[str, Any]:
    return {
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": (peer, 5555),
    }


def test_client_ip_is_the_first_forwarded_hop() -> None:
    assert clients.client_ip(scope(("X-Forwarded-For", "203.0.113.7, 10.0.0.2"))) == "203.0.113.7"
    assert clients.client_ip(scope()) == "10.0.0.9"
    assert clients.client_ip(scope(("X-Forwarded-For", " , 10.0.0.2"))) == "10.0.0.9"


KEY = "rk_" + "k" * 43


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ((("Authorization", f"Bearer {KEY}"),), KEY),
        ((("Authorization", f"bearer   {KEY} "),), KEY),
        ((("X-API-Key", KEY),), KEY),
        ((("Authorization", f"Bearer {KEY}"), ("X-API-Key", "rk_other")), KEY),
        ((("Authorization", "Basic dTpw"),), None),
        ((("X-API-Key", "scalectl-load-0123"),), None),  # not one of ours: no lookup
        ((("X-API-Key", "rk_" + "x" * 200),), None),  # too long to be one
        ((("X-API-Tier", "premium"),), None),
        ((), None),
    ],
)
def test_presented_key(headers: tuple[tuple[str, str], ...], key: str | None) -> None:
    assert principal.presented_key(scope(*headers)) == key


def test_key_cache_is_bounded_and_keeps_unknown_keys_apart() -> None:
    cache = principal.KeyCache(ttl=60, max_entries=2, negative_ttl=60)
    good = principal.Principal(1, 10, "basic")
    cache.put(b"good", good)
    for i in range(10):  # bogus keys cannot evict a good one
        cache.put(f"bogus{i}".encode(), None)
    assert cache.get(b"good") == (True, good)
    assert cache.get(b"bogus9") == (True, None)
    assert cache.get(b"bogus0") == (False, None)
    expired = principal.KeyCache(ttl=0, max_entries=2, negative_ttl=0)
    expired.put(b"good", good)
    assert expired.get(b"good") == (False, None)
    assert expired.get(b"good", stale=True) == (True, good)  # for database outages only


def test_only_health_and_metrics_are_exempt() -> None:
    assert clients.is_exempt("/health")
    assert clients.is_exempt("/health/ready")
    assert clients.is_exempt("/metrics")
    assert not clients.is_exempt("/healthz")
    assert not clients.is_exempt("/api/stats")
