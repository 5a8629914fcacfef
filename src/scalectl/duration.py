"""Durations as people write them, on the command line, in health configs and in checklist
files: one grammar for both (`500ms`, `5s`, `2m`, `1h30m`, `7d`, `2w`, or a bare number of
seconds), so a value that works in one place works in the other."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
EXAMPLES = "500ms, 5s, 2m, 1h30m or 7d"


def parse_duration(text: str, *, allow_zero: bool = False) -> float:
    """Seconds from `120`, `120s`, `2m`, `1m30s`, `500ms`, `1.5s`, `24h`, `7d`, `1d12h` or
    `2w`; ValueError otherwise. A bare number is seconds; otherwise each part is a number
    followed by its unit, with no spaces between parts.

    Zero is refused unless `allow_zero` (a checklist's `valid_for: 0` means "never reuse");
    every wait in `scalectl health` must be able to end and every probe needs some time."""
    spec = text.strip().lower()
    if _NUMBER.fullmatch(spec):
        seconds = float(spec)
    else:
        parts = _PART.findall(spec)
        if not parts or "".join(n + u for n, u in parts) != spec:
            raise ValueError(f"expected a duration such as {EXAMPLES}, got '{text}'")
        seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"must be longer than 0 seconds, got '{text}'")
    return seconds


def format_seconds(seconds: float) -> str:
    """Short and exact enough for messages: 0.5s, 5s, 120s."""
    return f"{seconds:g}s"


def format_duration(seconds: float) -> str:
    """A short human form for ages and windows: 4.5s, 12m, 5h, 3.5d."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or unit == "s":
            value = seconds / size
            text = f"{value:.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")
            return text + unit
    raise AssertionError("unreachable")
