"""A test HTTP server whose truth is known: latency cycles through fixed values and every
tenth request to /flaky fails, so measured percentiles and error rates can be checked.
/stall answers at once except in the first STALL_SECONDS of every STALL_PERIOD seconds,
when the server "freezes": requests arriving then wait until the stall ends (the
coordinated-omission test). /slow always takes SLOW_MS, /slower SLOWER_MS. /cold is a cold
start: for COLD_SECONDS after this server's first /cold request it takes COLD_MS and every
COLD_FAIL_EVERY-th request answers 503; afterwards it answers at once (the warm-up tests).
/json answers 200 with a JSON body and `Content-Type: application/json`, but every
JSON_EMPTY_EVERY-th body has no items: the request succeeds and a check on the body fails."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psutil

from tests.helpers.servers import running

# /known sleeps 10, 20, ..., 100 ms in turn: p50 is 50-60 ms, p90 90-100 ms, max 100 ms.
KNOWN_MS = [10 * i for i in range(1, 11)]
NINE_MS = [10 * i for i in range(1, 10)]
FLAKY_EVERY = 10  # every 10th /flaky request answers 500: a 10% error rate
STALL_PERIOD = 4.0
STALL_SECONDS = 1.0
SLOW_MS = 100
SLOWER_MS = 2000
COLD_SECONDS = 3.0
COLD_MS = 300
COLD_FAIL_EVERY = 5
JSON_EMPTY_EVERY = 4
JSON_BODY = b'{"items": [{"id": 1, "name": "one"}], "total": 1}'
JSON_EMPTY = b'{"items": [], "total": 0}'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body in one segment, sent at once: otherwise Nagle plus the client's
    # delayed ACK add ~40 ms to every response and the "truth" is no longer known.
    wbufsize = 1 << 16

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    known = itertools.cycle(KNOWN_MS)
    lock = threading.Lock()

    def do_GET(self) -> None:
        status = 200
        if self.path.startswith("/known"):
            with self.lock:
                delay = next(self.known)
            time.sleep(delay / 1000)
        elif self.path.startswith("/nine"):
            time.sleep(self._nine() / 1000)
        elif self.path.startswith("/flaky"):
            server = self.server
            assert isinstance(server, _Server)
            with self.lock:
                n = next(server.flaky)
            status = 500 if n % FLAKY_EVERY == 0 else 200
        elif self.path.startswith("/stall"):
            into = time.time() % STALL_PERIOD
            if into < STALL_SECONDS:
                time.sleep(STALL_SECONDS - into)
        elif self.path.startswith("/cold"):
            status = self._cold()
        elif self.path.startswith("/json"):
            return self._json()
        elif self.path.startswith("/slower"):
            time.sleep(SLOWER_MS / 1000)
        elif self.path.startswith("/slow"):
            time.sleep(SLOW_MS / 1000)
        body = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _nine(self) -> int:
        server = self.server
        assert isinstance(server, _Server)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        run, plus = query.get("run", [""])[0], int(query.get("plus", ["0"])[0])
        with self.lock:
            cycle = server.nine.setdefault(run, itertools.cycle(NINE_MS))
            return next(cycle) + plus

    def _json(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        with self.lock:
            n = next(server.json)
        body = JSON_EMPTY if n % JSON_EMPTY_EVERY == 0 else JSON_BODY
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _cold(self) -> int:
        server = self.server
        assert isinstance(server, _Server)
        with self.lock:
            if server.cold_since is None:
                server.cold_since = time.monotonic()
            cold = time.monotonic() - server.cold_since < COLD_SECONDS
            n = server.cold_requests = server.cold_requests + cold
        if not cold:
            return 200
        time.sleep(COLD_MS / 1000)
        return 503 if n % COLD_FAIL_EVERY == 0 else 200

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 drops SYNs when users connect together
    cold_since: float | None = None  # per server: each test's server starts cold
    cold_requests = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per server: two servers in one process (tests/loadtest/test_locust_parity.py runs
        # plain Locust and scalectl side by side) each fail every tenth of their own.
        self.flaky = itertools.count(1)
        self.nine: dict[str, Iterator[int]] = {}
        self.json = itertools.count(1)


@contextmanager
def serve() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    with running(server) as port:
        yield f"http://127.0.0.1:{port}"


def no_locust_left(*marks: str) -> bool:
    """No Locust process whose command line holds one of `marks` (this test's server URL,
    its master port) is left; workers of --processes are forks with the master's command
    line. Other Locust runs on the machine (another test worker's, a colleague's drill) are
    not ours to count."""
    left = []
    for p in psutil.process_iter(["cmdline"]):
        cmdline = p.info["cmdline"] or []
        joined = " ".join(cmdline)
        if "locust" in joined and "pytest" not in joined and any(m in cmdline for m in marks):
            left.append(p)
    return not left


class SlotsServer:
    """A service of known capacity: `slots` requests at a time, each `service_ms` long, the
    rest queued for a slot (never refused), so it sustains slots / service time requests/s
    and no more. asyncio in a thread: no thread per connection, whose scheduling would blur
    the service time. /metrics shows the queue as `db_pool_requests_waiting` (a slot is
    like a pooled connection) and this process's CPU, the reference app's names."""

    def __init__(self, slots: int, service_ms: float) -> None:
        self.slots, self.service = slots, service_ms / 1000
        self.waiting = 0
        self.ready = threading.Event()
        self.port = 0

    async def serve(self) -> None:
        """Serve until stop(); asyncio.run then cancels the open connections' tasks."""
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self.semaphore = asyncio.Semaphore(self.slots)
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        async with server:
            await self.stopping.wait()

    def stop(self) -> None:
        """From another thread: end serve()."""
        self.loop.call_soon_threadsafe(self.stopping.set)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if head.split(b" ", 2)[1].startswith(b"/metrics"):
                    body = (
                        "# TYPE db_pool_requests_waiting gauge\n"
                        f"db_pool_requests_waiting {self.waiting}\n"
                        "# TYPE process_cpu_seconds counter\n"
                        f"process_cpu_seconds_total {time.process_time()}\n"
                    ).encode()
                else:
                    self.waiting += 1
                    async with self.semaphore:
                        self.waiting -= 1
                        await asyncio.sleep(self.service)
                    body = b"ok\n"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()


@contextmanager
def serve_slots(slots: int, service_ms: float) -> Iterator[str]:
    """SlotsServer on a loopback port, in a thread, while the block runs; yields its URL."""
    server = SlotsServer(slots, service_ms)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    assert server.ready.wait(10), "the slots server did not start"
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()
        thread.join(10)
