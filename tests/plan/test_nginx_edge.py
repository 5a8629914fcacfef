"""The rendered nginx at the edge, run for real in front of an upstream that echoes what it
receives: nosniff, limit_conn, trusted proxies and internal-only paths (issue 11)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from scalectl.plan import prepare, render_files
from scalectl.plan.validate import which
from scalectl.stack.process import free_port
from tests.helpers.servers import running

PLAN = """\
version: 1
name: edge
services:
  api:
    image: ghcr.io/acme/edge:1.0.0
    traffic: {{peak_rps: 10}}
    capacity: {{per_replica_rps: 100}}
    resources:
      requests: {{cpu: 250m, memory: 256Mi}}
      limits: {{cpu: "1", memory: 512Mi}}
    replicas: {{min: 1, max: 2}}
    health: {{liveness: /health/live, readiness: /health/ready, startup: /health/live}}
slo:
  availability: {{target: 0.999}}
load_balancer:
{load_balancer}
profiles:
  local: {{upstreams: loopback, listen: "127.0.0.1:{listen}", base_port: {upstream}, instances: 1}}
"""


class Echo(ThreadingHTTPServer):
    """Answers every GET with the path and headers it received; /slow waits for `release`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _EchoHandler)
        self.entered = threading.Event()
        self.release = threading.Event()


class _EchoHandler(BaseHTTPRequestHandler):
    server: Echo

    def do_GET(self) -> None:
        if self.path == "/slow":
            self.server.entered.set()
            self.server.release.wait(10)
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    with running(server):
        try:
            yield server
        finally:
            server.release.set()  # before shutdown: a /slow handler waits for it


class Edge:
    """nginx running the config `scalectl plan` renders for PLAN's local profile."""

    def __init__(self, root: Path, upstream: int, load_balancer: str) -> None:
        nginx = which("nginx", os.environ)
        assert nginx is not None, "the tests need nginx"
        self.port = free_port()
        root.mkdir()
        plan = root / "plan.yaml"
        plan.write_text(
            PLAN.format(load_balancer=load_balancer, listen=self.port, upstream=upstream)
        )
        self.prefix = root / "nginx"
        for sub in ("conf", "logs", "tmp"):
            (self.prefix / sub).mkdir(parents=True)
        (self.prefix / "tmp").chmod(0o1777)  # workers run unprivileged when we are root
        conf = self.prefix / "conf" / "nginx.conf"
        conf.write_bytes(render_files(prepare(plan, "local"))["nginx/nginx.conf"])
        self.conf = conf.read_text()
        argv = [nginx, "-p", f"{self.prefix}/", "-c", str(conf), "-g", "daemon off;"]
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", trust_env=False)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            assert self.proc.poll() is None, self.proc.communicate()[1]
            try:
                if self.client.get("/nginx/health").status_code == 200:
                    return
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)

    def get(self, path: str, **headers: str) -> httpx.Response:
        return self.client.get(path, headers=headers)

    def raw_status(self, target: str) -> int:
        """The status of a GET of `target` sent as written (clients normalize some paths)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return int(sock.recv(64).split()[1])

    def access_log(self) -> list[dict[str, object]]:
        """The access log's entries; nginx writes one just after its answer, so wait for it."""
        path = self.prefix / "logs" / "access.log"
        deadline = time.monotonic() + 5
        while not path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        return [json.loads(line) for line in path.read_text().splitlines()]

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.communicate(timeout=10)


@pytest.fixture
def edge(tmp_path: Path, echo: Echo) -> Iterator[Callable[..., Edge]]:
    started: list[Edge] = []

    def start(load_balancer: str = "  algorithm: round_robin") -> Edge:
        started.append(Edge(tmp_path / str(len(started)), echo.server_address[1], load_balancer))
        return started[-1]

    try:
        yield start
    finally:
        for one in started:
            one.stop()


def seen(response: httpx.Response) -> dict[str, str]:
    """The headers the upstream received, by lowercase name."""
    assert response.status_code == 200, response.text
    return {k.lower(): v for k, v in response.json()["headers"].items()}


def test_nosniff_on_every_answer(edge: Callable[..., Edge]) -> None:
    nginx = edge("  internal_networks: [10.0.0.0/8]")
    for path, status in (("/api/x", 200), ("/nginx/health", 200), ("/metrics", 403)):
        response = nginx.get(path)
        assert response.status_code == status, path
        assert response.headers["x-content-type-options"] == "nosniff", path


def test_internal_paths_refused_outside_the_internal_networks(edge: Callable[..., Edge]) -> None:
    # Loopback is not internal here: this client is outside.
    outside = edge("  internal_networks: [10.0.0.0/8, 'fd00::/8']")
    refused = ["/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"]
    refused += ["/health/comprehensive", "/health/ready", "/health/database"]
    for path in refused:
        assert outside.get(path).status_code == 403, path
    # Spellings the app reads as /metrics; nginx matches the normalized path too.
    for target in ("//metrics", "/%6detrics", "/x/../metrics"):
        assert outside.raw_status(target) == 403, target
    # A client cannot claim an internal address: X-Forwarded-For is not read.
    assert outside.get("/metrics", **{"X-Forwarded-For": "10.1.2.3"}).status_code == 403
    for path in ("/health", "/health/live", "/api/metrics", "/metricsx", "/api/docs"):
        assert outside.get(path).json()["path"] == path  # public: proxied as before

    inside = edge()  # the default networks hold loopback, as the local stack needs
    for path in ("/metrics", "/health/comprehensive", "/docs", "/openapi.json"):
        assert inside.get(path).json()["path"] == path


def test_probe_paths_below_health_stay_public(edge: Callable[..., Edge]) -> None:
    nginx = edge("  internal_networks: []")  # nobody is internal
    assert nginx.get("/health/live").json()["path"] == "/health/live"  # PLAN's liveness
    assert nginx.get("/health/ready").status_code == 403
    assert nginx.get("/health/live/x").status_code == 403


def test_client_sent_forwarded_for_is_not_trusted(edge: Callable[..., Edge]) -> None:
    nginx = edge()
    headers = seen(nginx.get("/api/x", **{"X-Forwarded-For": "203.0.113.9"}))
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-real-ip"] == "127.0.0.1"
    assert [e["remote_addr"] for e in nginx.access_log()] == ["127.0.0.1"]


def test_trusted_proxies_supply_the_client_address(edge: Callable[..., Edge]) -> None:
    nginx = edge("  trusted_proxies: [127.0.0.1]")
    assert "set_real_ip_from 127.0.0.1/32;" in nginx.conf
    # The client wrote the first hop; the trusted proxy (the peer here) appended the second.
    chain = {"X-Forwarded-For": "10.9.9.9, 203.0.113.9"}
    headers = seen(nginx.get("/api/x", **chain))
    assert headers["x-forwarded-for"] == "203.0.113.9"
    assert headers["x-real-ip"] == "203.0.113.9"
    # The real client is outside the internal networks; the proxy itself is inside.
    assert nginx.get("/metrics", **chain).status_code == 403
    assert nginx.get("/metrics").status_code == 200


def test_limit_conn_refuses_beyond_the_cap(edge: Callable[..., Edge], echo: Echo) -> None:
    nginx = edge("  max_connections_per_ip: 1")
    assert "limit_conn per_ip_conn 1;" in nginx.conf
    first: list[httpx.Response] = []
    with httpx.Client(base_url=str(nginx.client.base_url), trust_env=False) as other:
        held = threading.Thread(target=lambda: first.append(other.get("/slow", timeout=15)))
        held.start()
        try:
            assert echo.entered.wait(10), "the first request never reached the upstream"
            refused = nginx.get("/api/x")
            assert refused.status_code == 429
            assert refused.headers["x-content-type-options"] == "nosniff"
        finally:
            echo.release.set()
            held.join(15)
    assert first[0].status_code == 200
    # The slot is free again: nginx releases it when it finalizes the request, a moment
    # after the client has the response.
    deadline = time.monotonic() + 5
    while (status := nginx.get("/api/x").status_code) == 429 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status == 200


def test_a_request_naming_no_known_tier_gets_the_strictest_tier_limit(
    edge: Callable[..., Edge],
) -> None:
    """Leaving out the tier header, or sending one no tier has, used to escape every tier
    limit: it now counts against the strictest tier's, per API key."""
    nginx = edge(
        "  rate_limits:\n"
        "    tiers:\n"
        "      premium: {rps: 1000, burst: 1000}\n"
        "      free: {rps: 1, burst: 1}\n"
    )
    key = {"X-API-Key": "k1"}

    def statuses(**headers: str) -> list[int]:
        return [nginx.get("/api/x", **key, **headers).status_code for _ in range(6)]

    assert statuses() == [200, 200, 429, 429, 429, 429]
    # Another key has its own bucket; a made-up tier counts as the strictest too.
    key = {"X-API-Key": "k2"}
    assert statuses(**{"X-API-Tier": "gold"})[-1] == 429
    # A named tier keeps its own limit (only a gateway in front may be trusted to set it).
    key = {"X-API-Key": "k3"}
    assert statuses(**{"X-API-Tier": "premium"}) == [200] * 6


def test_exact_rates_run_in_nginx_and_a_slow_one_holds_per_minute(
    edge: Callable[..., Edge],
) -> None:
    """Every form of limit renders a rate nginx accepts; 100/hour, which nginx cannot count,
    is held to 2r/m (one request per 30 s, no burst): a second request at once is refused."""
    nginx = edge(
        "  rate_limits:\n"
        '    per_ip: {rate: "100/hour"}\n'
        "    tiers:\n"
        '      a: {rate: "10/second", burst: 5}\n'
        '      b: {rate: "100/minute"}\n'
        "      c: {rps: 0.5}\n"
        "      d: {rps: 2.5}\n"
    )
    for zone, rate in (("per_ip", "2r/m"), ("tier_a", "10r/s"), ("tier_b", "100r/m")):
        assert f"zone={zone}:10m rate={rate};" in nginx.conf
    for zone, rate in (("tier_c", "30r/m"), ("tier_d", "150r/m")):
        assert f"zone={zone}:10m rate={rate};" in nginx.conf
    assert [nginx.get("/api/x").status_code for _ in range(3)] == [200, 429, 429]
