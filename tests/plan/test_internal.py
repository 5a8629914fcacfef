"""Edge settings of the plan: networks, the connection cap, internal-only paths (issue 11)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scalectl.plan import prepare, render_files
from scalectl.plan.internal import internal_paths
from scalectl.plan.load import load_plan
from scalectl.plan.loadbalancer import LoadBalancer
from scalectl.plan.probes import Health
from scalectl.plan.workloads import Service
from tests.conftest import ROOT, fixture_path
from tests.helpers.input_files import problems

MINIMAL = fixture_path("plans", "minimal.yaml").read_text()


def service(route: str = "/", **health: str) -> Service:
    api = load_plan(fixture_path("plans", "minimal.yaml")).plan.services["api"]
    return api.model_copy(update={"route": route, "health": Health(**health)})


def test_default_networks_are_loopback_and_private() -> None:
    lb = LoadBalancer()
    assert lb.internal_networks == [
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    ]
    assert lb.trusted_proxies == []
    assert lb.max_connections_per_ip == 100


def test_networks_are_normalized() -> None:
    lb = LoadBalancer.model_validate(
        {"trusted_proxies": ["10.0.0.7", "2001:DB8::/32"], "internal_networks": ["::1"]}
    )
    assert lb.trusted_proxies == ["10.0.0.7/32", "2001:db8::/32"]
    assert lb.internal_networks == ["::1/128"]


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.1/8",  # host bits set
        "10.0.0.0/33",
        "example.com",
        "fe80::1%eth0",  # ipaddress accepts a scope id
        "10.0.0.0/8; deny all",
        "",
        "1" * 80,
    ],
)
def test_bad_networks_are_refused_with_their_location(tmp_path: Path, value: str) -> None:
    text = MINIMAL + f"load_balancer:\n  trusted_proxies: ['{value}']\n"
    [line] = problems(tmp_path, text)
    assert line.startswith("28:21 load_balancer.trusted_proxies[0]: must be an IP address"), line


def test_network_lists_and_the_connection_cap_are_bounded(tmp_path: Path) -> None:
    many = ", ".join(f"10.0.{i // 256}.{i % 256}" for i in range(257))
    text = MINIMAL + f"load_balancer:\n  internal_networks: [{many}]\n  max_connections_per_ip: 0\n"
    assert problems(tmp_path, text) == [
        "28:22 load_balancer.internal_networks: list should have at most 256 items after "
        "validation, not 257",
        "29:27 load_balancer.max_connections_per_ip: must be greater than or equal to 1",
    ]


def test_internal_paths_below_the_route() -> None:
    paths = internal_paths(service("/api/v1.2"))
    assert paths.regex == r"^/api/v1\.2/(?:(?:metrics|openapi\.json|docs|redoc)(?:/|$)|health/)"
    internal = re.compile(paths.regex)
    for path in ("/api/v1.2/metrics", "/api/v1.2/docs/oauth2-redirect", "/api/v1.2/health/x"):
        assert internal.match(path), path
    for path in ("/api/v1x2/metrics", "/api/v1.2/metricsx", "/metrics", "/api/v1.2/health"):
        assert not internal.match(path), path


def test_probe_paths_under_health_stay_public() -> None:
    probes = {"liveness": "/health/live", "readiness": "/health/ready", "startup": "/health/up"}
    assert internal_paths(service("/", **probes)).public == ("/health/live", "/health/up")
    # /health is not below /health/; a probe outside the route never reaches this service.
    assert internal_paths(service("/")).public == ()
    assert internal_paths(service("/admin/", **probes)).public == ()


def test_relaxed_per_ip_limits_are_in_the_local_profile_only() -> None:
    plan = ROOT / "templates" / "plan" / "reference-app.yaml"
    conf = {
        profile: render_files(prepare(plan, profile))["nginx/nginx.conf"].decode()
        for profile in ("production", "local")
    }
    assert "zone=per_ip:10m rate=100r/s;" in conf["production"]
    assert "limit_req zone=per_ip burst=200 nodelay;" in conf["production"]
    assert "limit_conn per_ip_conn 100;" in conf["production"]
    assert "zone=per_ip:10m rate=2000r/s;" in conf["local"]
    assert "limit_conn per_ip_conn 1000;" in conf["local"]
