"""The SLO file's response checks (scalectl.loadtest.checks) evaluated inside Locust: on the
`request` event's `response`, per endpoint and check, counted per wall-clock second (so a
warm-up can be left out afterwards) and shipped from workers to the master as deltas, like
the histograms (child/recording.py).

No locust or gevent here: plugin.py registers `Checker.on_request` as a `request` listener
only when the SLO file declares checks, so a run without them pays nothing. An endpoint
without checks costs one dict lookup; a checked response is parsed as JSON at most once,
and only when a JSON check asks for it and the body is at most MAX_BODY_BYTES.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from scalectl.loadtest.checks import MAX_BODY_BYTES, Check, status_in
from scalectl.loadtest.results import METRIC_REQUEST_TYPE
from scalectl.loadtest.slo import DeclaredCheck, SloSpec

_MISSING = object()  # a JSON path that leads nowhere, or a body that was not parsed
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
    "array": (list,),
    "object": (dict,),
}


class _Body:
    """A response's JSON body, parsed on first use; _MISSING when it is absent, too large or
    not JSON (a JSON check then fails: it never passes on what it did not read)."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.doc: Any = None
        self.parsed = False

    def get(self) -> Any:
        if not self.parsed:
            self.parsed = True
            self.doc = _MISSING
            content = _read_body(self.response)
            if content is not None and len(content) <= MAX_BODY_BYTES:
                # Not JSON, or nested too deep: the value stays _MISSING.
                with contextlib.suppress(ValueError, RecursionError):
                    self.doc = json.loads(content)
        return self.doc


def _read_body(response: Any) -> bytes | str | None:
    """The body as the client already read it; None when it did not. A streamed response's
    body is the locustfile's to read: reading it here would take it away, without bound."""
    if hasattr(type(response), "_cached_content"):  # FastHttpUser's: unset until read
        content = getattr(response, "_cached_content", None)
    elif "_content" in getattr(response, "__dict__", {}):  # HttpUser's: False until read
        content = response._content
    else:  # another client's response: its content as it offers it
        content = getattr(response, "content", None)
    return content if isinstance(content, bytes | str) else None


def _at(doc: Any, parts: tuple[str, ...]) -> Any:
    """The value at a dotted path's parts (a digit part indexes a list), or _MISSING."""
    for part in parts:
        if isinstance(doc, dict):
            doc = doc.get(part, _MISSING)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return _MISSING
        if doc is _MISSING:
            return doc
    return doc


def _same(value: Any, expected: Any) -> bool:
    # JSON true is not 1, nor 1 true (Python's == says both are).
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    return bool(value == expected) and (isinstance(value, str) == isinstance(expected, str))


def _header(response: Any, name: str) -> str | None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get(name)  # both Locust clients' headers ignore the name's case
    if isinstance(value, list):  # geventhttpclient: a repeated header's values
        return ", ".join(str(v) for v in value)
    return None if value is None else str(value)


class Compiled:
    """One declared check, ready to judge responses."""

    def __init__(self, declared: DeclaredCheck) -> None:
        check: Check = declared.check
        self.id = declared.id
        self.check = check
        self.statuses = frozenset(check.status or ())
        self.parts = tuple(check.json_path.split(".")) if check.json_path else ()
        self.test = check.test

    def passes(self, response: Any, body: _Body) -> bool:
        """Whether `response` meets the check (no response at all never does)."""
        if response is None:
            return False
        check = self.check
        if self.statuses:
            return status_in(self.statuses, getattr(response, "status_code", None))
        if check.header is not None:
            value = _header(response, check.header)
            if self.test == "exists":
                return (value is not None) is check.exists
            if value is None:
                return False
            return value == check.equals if self.test == "equals" else str(check.contains) in value
        doc = body.get()
        if doc is _MISSING:
            return False
        value = _at(doc, self.parts)
        if self.test == "exists":
            return (value is not _MISSING) is check.exists
        if value is _MISSING:
            return False
        if self.test == "type":
            kinds = _TYPES[str(check.type)]
            return isinstance(value, kinds) and (check.type == "boolean") == isinstance(value, bool)
        return _same(value, check.equals)


class Checker:
    """The checks of one Locust process and their counts: second -> endpoint key -> check
    number -> [passed, failed]."""

    def __init__(self) -> None:
        self.compiled: list[tuple[DeclaredCheck, Compiled]] = []
        self.by_endpoint: dict[tuple[str, str], list[Compiled]] = {}
        self.counts: dict[int, dict[str, dict[int, list[int]]]] = {}

    def load(self, spec: SloSpec) -> bool:
        """The checks of `spec` (the plugin's part of the SLO file); whether there are any."""
        self.compiled = [(d, Compiled(d)) for d in spec.declared_checks()]
        return bool(self.compiled)

    def on_request(self, request_type: str, name: str, response: Any = None, **_: Any) -> None:
        """Locust's `request` listener: judge the response by the endpoint's checks."""
        checks = self.by_endpoint.get((request_type, name))
        if checks is None:
            checks = self.by_endpoint[(request_type, name)] = (
                []
                if request_type == METRIC_REQUEST_TYPE
                else [c for d, c in self.compiled if d.applies_to(request_type, name)]
            )
        if not checks:
            return
        body = _Body(response)
        per_key = self.counts.setdefault(int(time.time()), {})
        tallies = per_key.setdefault(f"{request_type} {name}", {})
        for compiled in checks:
            tally = tallies.get(compiled.id)
            if tally is None:
                tally = tallies[compiled.id] = [0, 0]
            tally[0 if compiled.passes(response, body) else 1] += 1

    def export(self) -> dict[str, dict[str, dict[str, list[int]]]]:
        """The counts since the last export (what a worker ships, what raw.json holds), with
        string keys for JSON; they start over."""
        counts, self.counts = self.counts, {}
        return {
            str(second): {
                key: {str(i): list(t) for i, t in tallies.items()}
                for key, tallies in per_key.items()
            }
            for second, per_key in sorted(counts.items())
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add another process's export (a worker's report)."""
        for second, per_key in data.items():
            into = self.counts.setdefault(int(second), {})
            for key, tallies in per_key.items():
                mine = into.setdefault(str(key), {})
                for check_id, (passed, failed) in tallies.items():
                    tally = mine.setdefault(int(check_id), [0, 0])
                    tally[0] += int(passed)
                    tally[1] += int(failed)
