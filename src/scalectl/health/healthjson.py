"""`application/health+json` (draft-inadarei-api-health-check): the status of a service
and of each of its components, as the reference app's /health* endpoints answer it.

https://datatracker.ietf.org/doc/html/draft-inadarei-api-health-check
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from scalectl.health.vocabulary import ANY, Status, Vocabulary

RANK: dict[Status, int] = {"pass": 0, "warn": 1, "fail": 2}
MEDIA_TYPE = "application/health+json"


class HealthJsonError(ValueError):
    """A body that says it is health+json but is not."""


class UnknownStatus(HealthJsonError):
    """A JSON body whose `status` is a word the vocabulary does not know."""


@dataclass(frozen=True)
class Component:
    """One entry of `checks`: key `component:measurement`, plus its componentId if any."""

    name: str
    status: Status
    observed: str  # "12.3 ms", "3 connections", "" when nothing was observed
    output: str  # the component's own explanation (often an error), "" when none


@dataclass(frozen=True)
class HealthDoc:
    """A parsed health+json body: the overall status, identifiers, and one Component per entry of
    `checks`."""

    status: Status
    release_id: str | None
    version: str | None
    service_id: str | None
    output: str
    components: tuple[Component, ...]


def worst(statuses: list[Status]) -> Status:
    """The worst of `statuses` (fail over warn over pass); pass for none."""
    return max(statuses, key=RANK.__getitem__, default="pass")


def is_health_json(content_type: str) -> bool:
    """Whether a Content-Type header names application/health+json (parameters ignored)."""
    return content_type.split(";", 1)[0].strip().lower() == MEDIA_TYPE


def parse(content_type: str, body: bytes, vocabulary: Vocabulary = ANY) -> HealthDoc | None:
    """The health document in a response, or None when the response is not one.

    A response is one when its media type is application/health+json (then it must be
    valid, else HealthJsonError) or when it is a JSON object with a text `status` (many
    services answer plain application/json). `vocabulary` says what each status word
    means; a word it does not know raises UnknownStatus, so it can never pass."""
    declared = is_health_json(content_type)
    try:
        data: Any = json.loads(body)
    except ValueError as exc:
        if declared:
            raise HealthJsonError(f"not JSON ({exc})") from None
        return None
    if not isinstance(data, dict):
        if declared:
            raise HealthJsonError("not a JSON object")
        return None
    raw_status = data.get("status")
    if not isinstance(raw_status, str):
        if declared:
            raise HealthJsonError(f"'status' must be a status word, got {raw_status!r}")
        return None
    status = vocabulary.status_of(raw_status)
    if status is None:
        raise UnknownStatus(vocabulary.unknown(raw_status))
    checks = data.get("checks", {})
    if not isinstance(checks, dict):
        raise HealthJsonError("'checks' must be an object")
    components = []
    for key, entries in checks.items():
        items = entries if isinstance(entries, list) else [entries]
        for entry in items:
            if not isinstance(entry, dict):
                raise HealthJsonError(f"checks.{key}: entries must be objects")
            components.append(_component(str(key), entry, status, vocabulary))
    return HealthDoc(
        status=status,
        release_id=_text(data.get("releaseId")),
        version=_text(data.get("version")),
        service_id=_text(data.get("serviceId")),
        output=_text(data.get("output")) or "",
        components=tuple(components),
    )


def _component(
    key: str, entry: dict[str, Any], overall: Status, vocabulary: Vocabulary
) -> Component:
    name = key
    if entry.get("componentId") is not None:
        name = f"{key}[{entry['componentId']}]"
    raw = entry.get("status")
    output = _text(entry.get("output")) or ""
    # The draft makes a component's status optional; without one it shares the whole's.
    status: Status = overall
    if isinstance(raw, str):
        known = vocabulary.status_of(raw)
        if known is None:
            status = "fail"
            output = "; ".join(t for t in (vocabulary.unknown(raw), output) if t)
        else:
            status = known
    value, unit = entry.get("observedValue"), entry.get("observedUnit")
    observed = "" if value is None else f"{_value(value)}{f' {unit}' if unit else ''}"
    return Component(name, status, observed, output)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str | int | bool):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return json.dumps(value, separators=(",", ":"))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
