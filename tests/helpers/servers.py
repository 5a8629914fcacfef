"""Test servers in a thread: the one way tests start and stop a socketserver."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def running(server: socketserver.BaseServer, poll: float = 0.5) -> Iterator[int]:
    """Serve `server` from a daemon thread while the block runs (checking for shutdown every
    `poll` seconds); yields its port. Shut down and closed afterwards, whatever happened."""
    thread = threading.Thread(target=server.serve_forever, args=(poll,), daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])  # type: ignore[index]  # TCP: (host, port)
    finally:
        server.shutdown()
        server.server_close()
