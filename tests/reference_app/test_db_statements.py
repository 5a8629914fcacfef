"""What refapp.db sends to a real PostgreSQL per call, counted twice: by the app's own
`db_queries_total` and on the wire by a relay reading the protocol (issue 13: the read-heavy
mix's SQL per request). And that handing out a pooled connection without a round trip
still finds one that was cut while idle. Run in a child process: refapp's metrics need their
multiprocess directory before import, as under gunicorn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from scalectl.stack.servers import Server

pytestmark = pytest.mark.stack

APP_DIR = Path(__file__).resolve().parents[2] / "reference_app"
DRIVER = Path(__file__).with_name("statements_driver.py")
IDLE_AFTER = 2.0  # seconds; DATABASE_CHECK_IDLE_AFTER for these pools


def drive(postgres: Server, scenario: str, idle_after: float) -> dict[str, Any]:
    url = postgres.create_database(f"refapp_{uuid.uuid4().hex[:12]}")
    spec = json.dumps({"scenario": scenario, "url": url, "idle_after": idle_after})
    with tempfile.TemporaryDirectory() as metrics:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics, "PYTHONPATH": str(APP_DIR)}
        done = subprocess.run(
            [sys.executable, str(DRIVER), spec],
            cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_each_call_sends_what_it_is_counted_for(postgres_server: Server) -> None:
    sent = drive(postgres_server, "statements", IDLE_AFTER)
    # [counted by db_queries_total, seen on the wire]. A connection used a moment ago goes
    # out without the pool's check, and a single-statement write without BEGIN/COMMIT.
    assert sent.pop("two_refused") == "WriteNotAtomic"
    assert sent == {
        "post": [1, 1],  # the INSERT of the submission and its job (one CTE)
        "read": [1, 1],
        "stats": [1, 1],  # both counts in one statement
        "list": [1, 1],
        "patch": [1, 1],
        "delete": [1, 1],
        # A write's second statement outside a transaction is refused before it is sent.
        "two": [1, 1],
        # In db.transaction(): BEGIN, both, COMMIT.
        "two_in_transaction": [4, 4],
        # Idle past IDLE_AFTER: the check's round trip, counted too, then the statement.
        "after_idle": [2, 2],
    }


def test_posts_that_arrive_during_an_insert_share_the_next_statement(
    postgres_server: Server,
) -> None:
    sent = drive(postgres_server, "coalesce", IDLE_AFTER)
    # 20 at once: all arrive before the first statement is sent, so one statement, and each
    # caller gets its own row's answer. 13 at most 4 a statement: 4 + 4 + 4 + 1. [a, b, b,
    # c] with b twice: the statement fails on the duplicate key, then each row goes alone
    # (1 + 4), so only the second b fails.
    assert sent["answers"] is True
    assert sent["wire"] == [1, 4, 1 + 4]
    assert sent["isolated"][1:3] == [sent["isolated"][1], "UniqueViolation"]
    assert sent["isolated"][0] != "UniqueViolation" != sent["isolated"][3]
    assert sent["rows"] == [20 + 13 + 3, 20 + 13 + 3]


def test_a_connection_cut_while_idle_is_replaced_before_use(postgres_server: Server) -> None:
    # Idle far below the threshold: only the socket's state can tell the connection died.
    cut = drive(postgres_server, "cut", idle_after=60)
    assert cut["terminated"], cut
    # The pool's only connection was cut, yet the write and the read right after succeeded
    # on a new one: the dead connection was found at checkout, not by a failed statement.
    assert cut["written"], cut
    assert cut["replaced"], cut
    assert cut["connections_lost"] >= 1, cut
    # The failed check, the new connection's setup, the INSERT and the SELECT (and the
    # breaker's confirming probe): every one counted.
    assert cut["counted"] >= 4, cut
