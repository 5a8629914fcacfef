"""Just enough PromQL for the checklist: the metric names an expression selects, and
histogram_quantile. The text exposition itself is read by scalectl.exposition."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"((?:\\.|[^"\\])*)"')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
    "atan2",
}


def metric_names(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression: `rate(x_total{a="b"}[5m]) / y` gives
    {x_total, y}. Functions, keywords, label names and numbers are not names."""
    names = set(_NAME_MATCHER.findall(expr))
    text = "\n".join(line.split("#", 1)[0] for line in _STRING.sub('""', expr).splitlines())
    text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    for match in _IDENT.finditer(text):
        word = match.group(1)
        rest = text[match.end() :].lstrip()
        if word.lower() in _KEYWORDS or rest.startswith("("):
            continue
        names.add(word)
    return names


# Series Prometheus makes itself, never found on a target's /metrics page.
SYNTHETIC = {"up", "ALERTS", "ALERTS_FOR_STATE"}
SYNTHETIC_PREFIXES = ("scrape_",)


def synthetic(name: str) -> bool:
    """Whether `name` is a series Prometheus makes itself (up, ALERTS, scrape_*), never on a
    target's page."""
    return name in SYNTHETIC or name.startswith(SYNTHETIC_PREFIXES)


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """histogram_quantile over cumulative (upper bound, count) pairs, as Prometheus does it:
    linear interpolation inside the bucket holding the rank; the highest finite bound when
    the rank falls in +Inf. None without observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    total = ordered[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound
