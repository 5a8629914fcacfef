"""The plan's load balancer (`load_balancer`): nginx's balancing, failure handling, timeouts,
rate limits, retries and trusted networks.

Field descriptions here become docs/plan.md and the editor-facing JSON Schema, so they
are written for the person filling in the plan.
"""

from __future__ import annotations

import fractions
from typing import Annotated, Literal

from pydantic import Field, model_validator

from scalectl.plan.fieldtypes import Image, Positive
from scalectl.plan.patterns import RATE_WINDOWS, Cidr, Rate
from scalectl.strict import Strict


class Timeouts(Strict):
    """`load_balancer.timeouts`: nginx's timeouts towards clients and upstreams."""

    connect_seconds: Positive = 5
    read_seconds: Positive = 60
    send_seconds: Positive = 60
    client_body_seconds: Positive = 15
    keepalive_seconds: Positive = 65


class RateLimit(Strict):
    """One rate limit: `rps` or an exact `rate` (one of the two), and the burst nginx allows
    above it."""

    rps: Positive | None = Field(
        None, description="Requests per second; give this or `rate`, not both."
    )
    rate: Rate | None = Field(
        None,
        description="A whole count per window: '10/second', '100/minute', '100/hour' or "
        "'1000/day'; give this or `rps`, not both. The app enforces it exactly; nginx counts "
        "per second or per minute only (see docs/nginx.md).",
    )
    burst: int = Field(0, ge=0, le=1_000_000)

    @model_validator(mode="after")
    def _rps_or_rate(self) -> RateLimit:
        if self.rps is not None and self.rate is not None:
            # A profile's overrides merge into the plan's limit, so they may add one to the other.
            raise ValueError(
                "give rps or rate, not both (a profile override that sets one must set the "
                "other to null)"
            )
        if self.rps is None and self.rate is None:
            raise ValueError("give rps (requests per second) or rate (such as '100/minute')")
        return self

    @property
    def per_second(self) -> fractions.Fraction:
        """The limit in requests per second, exactly: `rate` 100/minute is 5/3."""
        if self.rate is not None:
            count, _, window = self.rate.partition("/")
            return fractions.Fraction(int(count), RATE_WINDOWS[window])
        # The decimal the plan wrote (0.1 stays 1/10), not the float's binary expansion.
        return fractions.Fraction(repr(self.rps))


class RateLimits(Strict):
    """`load_balancer.rate_limits`: per client address, and per API key by tier."""

    per_ip: RateLimit | None = None
    tier_header: str = Field("X-API-Tier", pattern=r"^[A-Za-z0-9-]+$")
    tiers: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], RateLimit] = Field(
        default_factory=dict, description="The limit per API key, by tier name."
    )


RetryCondition = Literal["error", "timeout", "http_500", "http_502", "http_503", "http_504"]
# Not http_503: nginx counts every status it retries on as a server failure (max_fails),
# so an app answering 503 to shed load or to fail fast while a dependency is down would be
# taken out of rotation, every instance at once (`scalectl drill postgres-outage` found it).
_DEFAULT_RETRY_ON: tuple[RetryCondition, ...] = ("error", "timeout", "http_502", "http_504")


class Retries(Strict):
    """`load_balancer.retries`: when nginx tries another upstream, how often and for how long."""

    tries: int = Field(2, ge=1, le=10)
    timeout_seconds: Positive = 10
    on: list[RetryCondition] = Field(default_factory=lambda: list(_DEFAULT_RETRY_ON))


MAX_NETWORKS = 256
# Loopback and private ranges (RFC 1918, RFC 4193): the local stack and in-cluster callers.
PRIVATE_NETWORKS = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)


class LoadBalancer(Strict):
    """`load_balancer`: nginx in front of the services: balancing, failure handling, timeouts,
    limits and trusted networks."""

    image: Image = "nginx:1.27"
    algorithm: Literal["least_conn", "round_robin", "ip_hash"] = "least_conn"
    max_fails: int = Field(3, ge=0, le=1000)
    fail_timeout_seconds: Positive = 10
    keepalive: int = Field(
        32, ge=0, le=100_000, description="Idle upstream connections kept per worker."
    )
    timeouts: Timeouts = Timeouts()
    rate_limits: RateLimits = RateLimits()
    retries: Retries = Retries()
    client_max_body_size: str = Field("10m", pattern=r"^[0-9]+[kmg]?$")
    worker_connections: int = Field(4096, ge=64, le=1_000_000)
    max_connections_per_ip: int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="Requests one client address may have in flight at once (limit_conn); "
        "more are answered 429.",
    )
    trusted_proxies: list[Cidr] = Field(
        default_factory=list,
        max_length=MAX_NETWORKS,
        description=f"Proxies in front of nginx, as CIDRs (at most {MAX_NETWORKS}): the "
        "client address is taken from X-Forwarded-For only as they wrote it. Empty: the peer "
        "address is the client. See docs/nginx.md.",
    )
    internal_networks: list[Cidr] = Field(
        default_factory=lambda: list(PRIVATE_NETWORKS),
        max_length=MAX_NETWORKS,
        description=f"Client networks, as CIDRs (at most {MAX_NETWORKS}), that may call "
        "/metrics, /docs, /redoc, /openapi.json and /health/* (but the liveness and startup "
        "paths) below each service's route; others get 403. Default: loopback and private "
        f"ranges ({', '.join(PRIVATE_NETWORKS)}).",
    )
