"""The slow-dependency drills' delaying proxy, with real sockets on loopback."""

from __future__ import annotations

import socket
import socketserver
import time
from collections.abc import Iterator

import pytest

from scalectl.drill.delayproxy import DelayProxy
from scalectl.errors import InputError
from tests.helpers.servers import running


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    with running(server) as port:
        yield port


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    started = time.monotonic()
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        assert chunk, "the proxy closed the connection"
        got += chunk
    assert got == payload
    return time.monotonic() - started


def test_it_adds_the_delay_per_round_trip_and_falls_back_by_itself(echo: int) -> None:
    proxy = DelayProxy("127.0.0.1", echo, lifetime=30)
    port = proxy.start()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            assert round_trip(sock) < 0.1  # pass-through
            proxy.slow_for(0.3, seconds=1.5)
            slow = [round_trip(sock) for _ in range(3)]
            assert all(0.28 <= s < 0.6 for s in slow), slow
            # Order and content hold for data bigger than one chunk.
            assert round_trip(sock, bytes(range(256)) * 1024) >= 0.28
            time.sleep(1.0)  # past the 1.5 s the delay was given for
            assert proxy.delay == 0
            assert round_trip(sock) < 0.1
        assert proxy.counts.accepted == 1
        assert proxy.counts.bytes_up == proxy.counts.bytes_down > 256 * 1024
    finally:
        proxy.stop()
    assert not proxy.running


def test_it_stops_by_itself_at_the_end_of_its_lifetime(echo: int) -> None:
    proxy = DelayProxy("127.0.0.1", echo, lifetime=1.0)
    port = proxy.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        assert round_trip(sock) < 0.1
        time.sleep(1.5)
        assert not proxy.running
        # The open connection was closed with it, and nothing listens any more.
        sock.settimeout(2)
        assert sock.recv(10) == b""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_connections_past_the_bound_are_closed(echo: int) -> None:
    proxy = DelayProxy("127.0.0.1", echo, lifetime=30, max_connections=2)
    port = proxy.start()
    try:
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        for sock in held:
            round_trip(sock)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as extra:
            extra.settimeout(2)
            assert extra.recv(10) == b""
        assert proxy.counts.refused == 1 and proxy.counts.peak_open == 2
        for sock in held:
            sock.close()
    finally:
        proxy.stop()


def test_only_loopback_targets() -> None:
    with pytest.raises(InputError, match="not a loopback address"):
        DelayProxy("192.0.2.1", 6379, lifetime=1)
    with pytest.raises(InputError, match="not a loopback address"):
        DelayProxy("127.0.0.1.example.com", 6379, lifetime=1)
