"""How the app identifies callers (pure functions; no servers)."""

from __future__ import annotations

from typing import Any

import pytest
from refapp import clients


def scope(*headers: tuple[str, str], peer: str = "10.0.0.9") -> dict[str, Any]:
    return {
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": (peer, 5555),
    }


def test_client_ip_is_the_first_forwarded_hop() -> None:
    assert clients.client_ip(scope(("X-Forwarded-For", "203.0.113.7, 10.0.0.2"))) == "203.0.113.7"
    assert clients.client_ip(scope()) == "10.0.0.9"
    assert clients.client_ip(scope(("X-Forwarded-For", " , 10.0.0.2"))) == "10.0.0.9"


@pytest.mark.parametrize(
    ("value", "tier"),
    [("premium", "premium"), ("BASIC", "basic"), ("gold", "free"), (None, "free")],
)
def test_tier_defaults_to_free(value: str | None, tier: str) -> None:
    headers = [("X-API-Tier", value)] if value else []
    assert clients.tier(scope(*headers), "X-API-Tier") == tier


def test_only_health_and_metrics_are_exempt() -> None:
    assert clients.is_exempt("/health")
    assert clients.is_exempt("/health/ready")
    assert clients.is_exempt("/metrics")
    assert not clients.is_exempt("/healthz")
    assert not clients.is_exempt("/api/stats")
