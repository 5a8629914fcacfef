"""Structured logs: one JSON object per line, carrying the request id of the request that
wrote it (a contextvar, so background tasks and library logs inherit it)."""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import json
import logging
import re
import time
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else passed through `extra=` is emitted as a field.
_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


_second = (-1, "")  # the last whole second formatted: strftime is a quarter of a line's cost


def _timestamp(created: float) -> str:
    global _second
    whole = int(created)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


def entry(created: float, level: str, logger: str, message: str) -> dict[str, Any]:
    """The fields every line starts with; the request id when there is one."""
    out: dict[str, Any] = {
        "time": _timestamp(created),
        "level": level,
        "logger": logger,
        "message": message,
    }
    rid = request_id.get()
    if rid is not None:
        out["request_id"] = rid
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = entry(record.created, record.levelname.lower(), record.name, record.getMessage())
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


# Access-line values that are JSON strings already: route templates and methods are few.
_QUOTED: dict[str, str] = {}
_QUOTED_MAX = 256
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]*\Z")  # needs no JSON escaping


def _quoted(text: str) -> str:
    found = _QUOTED.get(text)
    if found is None:
        found = json.dumps(text)
        if len(_QUOTED) < _QUOTED_MAX:
            _QUOTED[text] = found
    return found


class AccessLog:
    """Writes the access line. Through the logging machinery (a LogRecord, the caller's frame,
    the handler chain, the formatter's scan of the record, a JSON encoder per line) a line
    cost a sixth of a cached read's CPU. So while the logger's lines end at one plain
    StreamHandler with JsonFormatter and no filters (what dict_config installs), the line is
    put together here, the same JSON JsonFormatter writes, and written to that handler's
    stream under its lock. Any other set-up (a test's capture, an operator's handler) gets
    a normal record."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._name = json.dumps(logger.name)
        self._handler: logging.StreamHandler[Any] | None = None  # where _pending goes
        self._pending: list[str] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None  # where a flush is scheduled
        atexit.register(self.flush)  # a worker that stops between a line and its flush

    def _direct(self, level: int) -> logging.StreamHandler[Any] | None:
        handlers: list[logging.Handler] = []
        node: logging.Logger | None = self.logger
        while node is not None:
            if node.filters:
                return None
            handlers.extend(node.handlers)
            node = node.parent if node.propagate else None
        if len(handlers) != 1:
            return None
        handler = handlers[0]
        plain = type(handler) is logging.StreamHandler and not handler.filters
        if not plain or type(handler.formatter) is not JsonFormatter or level < handler.level:
            return None
        return handler  # type: ignore[return-value]

    def _line(self, level: int, route: str, method: str, status: int, ms: float) -> str:
        rid = request_id.get()
        if rid is None:
            rid_field = ""
        else:
            rid_field = (
                f', "request_id": "{rid}"'
                if _SAFE_ID.match(rid)
                else (f', "request_id": {json.dumps(rid)}')
            )
        return (
            f'{{"time": "{_timestamp(time.time())}", "level": "{_LEVELS[level]}", '
            f'"logger": {self._name}, "message": "request"{rid_field}, '
            f'"route": {_quoted(route)}, "method": {_quoted(method)}, "status": {status:d}, '
            f'"duration_ms": {ms!r}}}'
        )

    def write(self, level: int, route: str, method: str, status: int, duration_ms: float) -> None:
        """One request's line (`duration_ms` as given: the caller rounds it). Lines written
        in one turn of the event loop reach the stream together, at the end of that turn: one
        write instead of one per request, and no line waits longer than the turn."""
        if not self.logger.isEnabledFor(level):
            return
        handler = self._direct(level) if level in _LEVELS else None
        if handler is None:
            fields = {
                "route": route,
                "method": method,
                "status": status,
                "duration_ms": duration_ms,
            }
            self.logger.log(level, "request", extra=fields)
            return
        if handler is not self._handler:
            self.flush()
            self._handler = handler
        self._pending.append(self._line(level, route, method, status, duration_ms))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: now
            self.flush()
            return
        # Scheduled on this loop already: its flush takes this line too. A flush scheduled on
        # a loop that stopped before running it must not hold every later line back.
        if self._flush_loop is not loop:
            self._flush_loop = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write the lines not written yet."""
        self._flush_loop = None
        handler, lines = self._handler, self._pending
        if not lines or handler is None:
            return
        self._pending = []
        text = handler.terminator.join(lines) + handler.terminator
        try:
            with handler.lock:  # type: ignore[union-attr]
                handler.stream.write(text)
                handler.flush()
        except (OSError, ValueError):  # what the handler would do with a failed record
            handler.handleError(logging.makeLogRecord({"name": self.logger.name, "msg": text}))


_LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning"}


def dict_config(level: str) -> dict[str, Any]:
    """logging.config.dictConfig for the app and for gunicorn's `logconfig_dict`, so the
    master, the workers and uvicorn all write the same JSON lines to stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "refapp.logs.JsonFormatter"}},
        "handlers": {"stderr": handler},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            # Our middleware writes the access line (with route and request id); uvicorn's is
            # a duplicate without them.
            "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # One line per pool connection request at INFO is noise.
            "psycopg.pool": {"level": "WARNING"},
        },
    }


def configure(level: str) -> None:
    import logging.config

    logging.config.dictConfig(dict_config(level))
