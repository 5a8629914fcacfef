"""Durations as people write them on the command line and in health configs: 5s, 500ms."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds from `120`, `120s`, `2m`, `1m30s`, `500ms` or `1.5s`; ValueError otherwise.

    A bare number is seconds. Zero and negative durations are refused: every wait in
    `scalectl health` must be able to end and every probe must be allowed some time."""
    spec = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", spec):
        seconds = float(spec)
    else:
        parts = _PART.findall(spec)
        if not parts or "".join(n + u for n, u in parts) != spec:
            raise ValueError(f"expected a duration such as 5s, 500ms or 2m, got '{text}'")
        seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"must be longer than 0 seconds, got '{text}'")
    return seconds


def format_seconds(seconds: float) -> str:
    """Short and exact enough for messages: 0.5s, 5s, 120s."""
    return f"{seconds:g}s"
