"""The access line's direct path (refapp.logs.AccessLog) writes exactly what JsonFormatter
writes, and gives way to an ordinary record under any other logging set-up."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from refapp.logs import AccessLog, JsonFormatter, request_id

FIELDS = {"route": "/api/submissions/{submission_id}", "method": "GET", "status": 200}
ARGS = (FIELDS["route"], FIELDS["method"], FIELDS["status"])


@pytest.fixture
def tree() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger under a parent of its own with one JSON stderr-like handler, as dict_config
    sets up the root."""
    # Loggers of our own, outside logging's registry: pytest's capture attaches to those.
    parent = logging.Logger(f"test-access-{uuid.uuid4().hex[:8]}", logging.INFO)
    parent.propagate = False
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    parent.addHandler(handler)
    child = logging.Logger(f"{parent.name}.refapp.access")
    child.parent = parent
    yield child, out


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_direct_line_is_the_formatters_line(
    tree: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    logger, out = tree
    token = request_id.set("rid-1")
    try:
        logger.info("request", extra={**FIELDS, "duration_ms": 1.5})
        with monkeypatch.context() as patched:  # the direct path makes no record
            patched.setattr(logger, "_log", lambda *a, **k: pytest.fail("a record was made"))
            AccessLog(logger).write(logging.INFO, *ARGS, 1.5)
        AccessLog(logger).write(logging.DEBUG, *ARGS, 1.5)  # below the level: nothing
    finally:
        request_id.reset(token)
    via_record, direct = lines(out)
    assert list(direct) == list(via_record)  # the same keys in the same order
    assert {**direct, "time": ""} == {**via_record, "time": ""}
    assert direct["request_id"] == "rid-1" and direct["logger"] == logger.name
    assert direct["time"].endswith("Z") and len(direct["time"]) == len("2026-12-05T00:00:00.000Z")


def test_any_other_set_up_gets_an_ordinary_record(
    tree: tuple[logging.Logger, io.StringIO], caplog: pytest.LogCaptureFixture
) -> None:
    logger, out = tree
    logger.addHandler(caplog.handler)  # a second handler: a capture, an operator's
    try:
        AccessLog(logger).write(logging.WARNING, *ARGS, 1.5)
    finally:
        logger.removeHandler(caplog.handler)
    assert [r.getMessage() for r in caplog.records] == ["request"]
    assert caplog.records[0].status == 200  # type: ignore[attr-defined]
    assert lines(out)[0]["status"] == 200  # and the JSON handler still got its line


@pytest.mark.parametrize(
    ("rid", "route", "method"),
    [
        (None, "unmatched", "GET"),
        ('quote" back\\slash\nline', '/api/{x}"', 'M"\u00e9'),
        ("rid:1.2_3-4", "/h\u00e9alth/\u2028", "PATCH"),
    ],
)
def test_the_direct_line_escapes_what_needs_it(
    tree: tuple[logging.Logger, io.StringIO], rid: str | None, route: str, method: str
) -> None:
    logger, out = tree
    token = request_id.set(rid)
    try:
        logger.info(
            "request", extra={"route": route, "method": method, "status": 404, "duration_ms": 0.07}
        )
        AccessLog(logger).write(logging.INFO, route, method, 404, 0.07)
    finally:
        request_id.reset(token)
    raw = out.getvalue().splitlines()
    assert (
        raw[1][len('{"time": "2026-12-05T00:00:00.000Z"') :]
        == raw[0][len('{"time": "2026-12-05T00:00:00.000Z"') :]
    )
    direct = lines(out)[1]
    assert direct["route"] == route and direct["method"] == method
    assert direct.get("request_id") == rid


def test_lines_of_one_loop_turn_are_written_together_and_none_is_held_back(
    tree: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, out = tree
    access = AccessLog(logger)
    # A loop that stops in the turn that wrote a line never runs that line's flush.
    stopped = asyncio.new_event_loop()
    stopped.call_soon(stopped.stop)
    stopped.call_soon(access.write, logging.INFO, *ARGS, 1.0)
    stopped.run_forever()
    stopped.close()
    assert out.getvalue() == ""

    async def turn() -> list[str]:
        for n in range(3):
            access.write(logging.INFO, *ARGS, 2.0 + n)
        held = out.getvalue().splitlines()  # nothing written within the turn
        await asyncio.sleep(0)
        return held

    assert asyncio.run(turn()) == []
    # The next loop's flush took the stopped loop's line with its own, in order.
    assert [line["duration_ms"] for line in lines(out)] == [1.0, 2.0, 3.0, 4.0]
