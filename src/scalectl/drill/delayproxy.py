"""A small TCP proxy on loopback that delays the data through it: the slow-dependency
drills put it between the app instances and Redis or PostgreSQL.

Each chunk read from either side is written to the other once half the current delay has
passed, so a request and its answer (one round trip) gain the whole delay; order is kept
and nothing is dropped. Everything is bounded: it listens on 127.0.0.1 only, connects only
to a loopback address (checked after resolution), accepts at most `max_connections` at
once (more are closed at once), holds a bounded amount of data per direction, and stops by
itself after `lifetime` seconds whatever its owner does. A delay given with `slow_for`
falls back to none by itself too.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass

from scalectl.errors import InputError
from scalectl.netguard import host_problem, resolve

CHUNK = 64 * 1024
QUEUED_CHUNKS = 16  # per direction: a reader waits while this much is held (1 MiB at most)


@dataclass
class ProxyCounts:
    """What the proxy did, for the drill's timeline and tests."""

    accepted: int = 0
    refused: int = 0  # over max_connections, or the target would not connect
    open: int = 0
    peak_open: int = 0
    bytes_up: int = 0  # client -> target
    bytes_down: int = 0  # target -> client


class DelayProxy:
    """A delaying TCP proxy from 127.0.0.1:`port` to `target_host`:`target_port`, run by an
    asyncio loop in a daemon thread of its own. Start it with `start`; it stops by itself
    after `lifetime` seconds, or when `stop` is called (idempotent)."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        lifetime: float,
        max_connections: int = 512,
        connect_timeout: float = 2.0,
    ) -> None:
        problem = host_problem(target_host)
        if problem:
            raise InputError(f"delay proxy: refusing target {target_host}: {problem}")
        # Connect to the address checked, not to a name that could resolve differently later.
        self.target = (resolve(target_host)[0], target_port)
        self.lifetime = lifetime
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.counts = ProxyCounts()
        self.port = 0
        self._delay = 0.0
        self._delay_until = float("inf")  # monotonic time the delay falls back to 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the owner's side (any thread) --------------------------------------------------

    def start(self, timeout: float = 5.0) -> int:
        """Listen on 127.0.0.1 (a free port) and serve in a daemon thread. Returns the port.
        Raises InputError when it cannot listen within `timeout` seconds."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            try:
                asyncio.run(self._serve(ready))
            except BaseException as exc:  # reported to start(), or lost once serving
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=main, name="delay-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure or not self.port:
            self.stop()
            raise InputError(f"delay proxy: could not listen on 127.0.0.1 ({failure or 'timeout'})")
        return self.port

    @property
    def delay(self) -> float:
        """The delay (seconds per round trip) applied now."""
        with self._lock:
            return self._delay if time.monotonic() < self._delay_until else 0.0

    def slow_for(self, delay: float, seconds: float) -> None:
        """Delay every round trip by `delay` seconds for the next `seconds` (then none)."""
        with self._lock:
            self._delay = max(0.0, delay)
            self._delay_until = time.monotonic() + max(0.0, seconds)

    def pass_through(self) -> None:
        """No delay from now on."""
        with self._lock:
            self._delay, self._delay_until = 0.0, float("inf")

    @property
    def running(self) -> bool:
        """Whether the proxy still serves."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection, and wait for the thread to end."""
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed already
                loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the loop's side ---------------------------------------------------------------

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0, reuse_address=True)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.lifetime)
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self.counts.open >= self.max_connections:
            self.counts.refused += 1
            writer.close()
            return
        self._tasks.add(task)
        self.counts.accepted += 1
        self.counts.open += 1
        self.counts.peak_open = max(self.counts.peak_open, self.counts.open)
        try:
            up_reader, upstream = await asyncio.wait_for(
                asyncio.open_connection(*self.target), self.connect_timeout
            )
        except (OSError, TimeoutError):
            self.counts.refused += 1
            self.counts.open -= 1
            writer.close()
            self._tasks.discard(task)
            return
        pipes = [
            asyncio.ensure_future(self._pipe(reader, upstream, up=True)),
            asyncio.ensure_future(self._pipe(up_reader, writer, up=False)),
        ]
        try:
            await asyncio.gather(*pipes)
        except OSError:
            pass  # a side reset the connection: close both
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            self.counts.open -= 1
            for w in (writer, upstream):
                w.close()
            self._tasks.discard(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        """Copy `reader` to `writer`, each chunk held until half the delay has passed."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUED_CHUNKS)

        async def read() -> None:
            while data := await reader.read(CHUNK):
                await queue.put((time.monotonic() + self.delay / 2, data))
            await queue.put((0.0, b""))

        async def write() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if up:
                    self.counts.bytes_up += len(data)
                else:
                    self.counts.bytes_down += len(data)
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError):
                if writer.can_write_eof():
                    writer.write_eof()

        # write() ends at the EOF read() passes on, or on an error: read() ends with it.
        reading = asyncio.ensure_future(read())
        try:
            await write()
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
