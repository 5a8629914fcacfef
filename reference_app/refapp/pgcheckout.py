"""Which pooled PostgreSQL connections need a round trip before the pool hands them out.

The pool's `check` used to send an empty statement on every checkout, to find connections
an outage cut: under load, one round trip for every statement the app meant to send. Here a
connection skips it when all of these hold, and none costs a round trip:
- it was last returned (or opened) less than `idle_after` seconds ago;
- no connection of the pool was found dead since then (one dead connection makes every
  other one suspect until checked);
- it is idle, not inside a transaction;
- its socket has nothing to read. An idle connection is sent nothing, so anything readable
  is the server's goodbye: a restart, `pg_terminate_backend` or an idle timeout sends an
  error and closes the socket, and a reset shows as readable too.

What still reaches the app: a peer gone silently (no FIN or RST yet) within `idle_after` of
the last use. The statement then fails as a lost connection (reads are retried, writes
answer 503); with the round trip the check itself would have hung on the same socket.
"""

from __future__ import annotations

import math
import select
import weakref
from time import monotonic
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus


def socket_quiet(fileno: int) -> bool:
    """Nothing to read, no hang-up and no error on the socket, asked without waiting."""
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)


class CheckoutCheck:
    """Remembers when each connection was last known good, per pool."""

    def __init__(self, idle_after: float) -> None:
        self.idle_after = idle_after
        self._last_good: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self._suspect_before = -math.inf

    def good(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The connection just answered (it was opened or used, and is going back)."""
        self._last_good[conn] = monotonic()

    def lost(self) -> None:
        """A connection was found dead: check every other one before its next use."""
        self._suspect_before = monotonic()

    def trusted(self, conn: psycopg.AsyncConnection[Any]) -> bool:
        """True when handing out `conn` needs no round trip (see the module's docstring)."""
        last = self._last_good.get(conn)
        if last is None or last <= self._suspect_before or monotonic() - last >= self.idle_after:
            return False
        pgconn = conn.pgconn
        if pgconn.transaction_status != TransactionStatus.IDLE:
            return False
        try:
            return socket_quiet(pgconn.socket)
        except (psycopg.OperationalError, ValueError, OSError):
            return False  # no socket any more: the round trip will say what is wrong
