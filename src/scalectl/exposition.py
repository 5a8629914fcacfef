"""The Prometheus text exposition format (what `/metrics` answers), and series selectors.

The one parser scalectl has for it: `scalectl health` evaluates [METRIC] conditions with it
and `scalectl checklist` reads the app's series with it. A small parser instead of
prometheus_client's: only the samples (name, labels, value) and the declared types are
needed, the core stays free of a dependency the app side already pins, and the errors can
name the line. Format: https://prometheus.io/docs/instrumenting/exposition_formats/
(OpenMetrics' `# EOF` and exemplars are accepted and ignored).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "'": "'"}
MATCH_OPS = ("=~", "!~", "!=", "=")  # longest first


class ExpositionError(ValueError):
    """The text is not the exposition format; the message names the line."""


class SelectorError(ValueError):
    """A malformed series selector; `offset` is where in the text it went wrong (0-based)."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class Sample:
    """One sample line: a series name, its labels in order, and the value."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    @property
    def label_map(self) -> dict[str, str]:
        """The labels as a dict."""
        return dict(self.labels)


# The series names a metric family of each type holds besides its own name.
_SUFFIXES = {
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("_count", "_sum", "_created"),
    "counter": ("_total", "_created"),
}


@dataclass(frozen=True)
class Exposition:
    """A parsed /metrics page: its samples and what its # TYPE, # HELP and # UNIT lines declare."""

    samples: tuple[Sample, ...]
    declared: frozenset[str] = frozenset()  # names from # TYPE / # HELP / # UNIT lines
    types: tuple[tuple[str, str], ...] = ()  # (family, type) from # TYPE lines

    @cached_property
    def names(self) -> frozenset[str]:
        """Every series name the page exposes or declares, a histogram's `_bucket`, `_sum`
        and `_count` included even before it has observations (labelled families have no
        samples until first used)."""
        out = {s.name for s in self.samples} | set(self.declared)
        for family, kind in self.types:
            out.update(family + suffix for suffix in _SUFFIXES.get(kind, ()))
        return frozenset(out)

    def exposes(self, name: str) -> bool:
        """Whether the metric exists at all (even with no series yet)."""
        return name in self.names

    def is_counter(self, name: str) -> bool:
        """Declared a counter (the family or its `_total` series), or named `*_total`."""
        counters = {f for f, kind in self.types if kind == "counter"}
        return (
            name.endswith("_total") or name in counters or name.removesuffix("_total") in counters
        )

    def select(self, selector: Selector) -> list[Sample]:
        """The samples `selector` matches, in page order."""
        return [s for s in self.samples if selector.matches(s)]

    def series(self, name: str) -> list[Sample]:
        """Every sample of one series name, whatever its labels."""
        return [s for s in self.samples if s.name == name]


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a selector: `label op "value"`, op one of = != =~ !~."""

    label: str
    op: str  # = != =~ !~
    value: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether `labels` satisfy the matcher."""
        # As in PromQL: a missing label is the empty string; regexes are fully anchored.
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.pattern is not None
        found = self.pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.label}{self.op}"{escaped}"'


@dataclass(frozen=True)
class Selector:
    """A series selector: a metric name and label matchers, as in PromQL."""

    name: str
    matchers: tuple[Matcher, ...] = ()

    def matches(self, sample: Sample) -> bool:
        """Whether `sample` has the selector's name and satisfies every matcher."""
        if sample.name != self.name:
            return False
        labels = sample.label_map
        return all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        if not self.matchers:
            return self.name
        return self.name + "{" + ",".join(str(m) for m in self.matchers) + "}"


def parse(text: str) -> Exposition:
    """Every sample of a text exposition; ExpositionError names the first bad line."""
    samples: list[Sample] = []
    declared: set[str] = set()
    types: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("TYPE", "HELP", "UNIT"):
                declared.add(parts[2])
                if parts[1] == "TYPE" and len(parts) == 4:
                    types.append((parts[2], parts[3].strip().lower()))
            continue
        try:
            samples.append(_sample(line))
        except ValueError as exc:
            raise ExpositionError(f"line {number}: {exc}") from None
    return Exposition(tuple(samples), frozenset(declared), tuple(types))


def _sample(line: str) -> Sample:
    match = _NAME.match(line)
    if not match:
        raise ValueError(f"expected a metric name, got '{_clip(line)}'")
    name, pos = match.group(), match.end()
    labels: tuple[tuple[str, str], ...] = ()
    if pos < len(line) and line[pos] == "{":
        pairs, pos = _label_set(line, pos, selector=False)
        labels = tuple((m.label, m.value) for m in pairs)
    rest = line[pos:].split(" # ", 1)[0].split()  # drop an OpenMetrics exemplar
    if not rest or len(rest) > 2:
        raise ValueError(f"expected a value after '{_clip(line[:pos])}'")
    try:
        value = float(rest[0])
    except ValueError:
        raise ValueError(f"'{rest[0]}' is not a number") from None
    return Sample(name, labels, value)


def parse_selector(text: str, start: int = 0) -> tuple[Selector, int]:
    """A PromQL-style selector at text[start:]: `name` or `name{label op "value", ...}`
    with =, !=, =~ and !~. Returns the selector and the offset just after it."""
    match = _NAME.match(text, start)
    if not match:
        raise SelectorError("expected a metric name such as http_requests_total", start)
    pos = match.end()
    matchers: tuple[Matcher, ...] = ()
    if pos < len(text) and text[pos] == "{":
        matchers, pos = _label_set(text, pos, selector=True)
    return Selector(match.group(), matchers), pos


def _label_set(text: str, pos: int, *, selector: bool) -> tuple[tuple[Matcher, ...], int]:
    """`{a="x",b!~"y"}` from text[pos] == '{'; returns the matchers and the offset after '}'.
    In exposition lines only `=` and double quotes are allowed."""
    out: list[Matcher] = []
    pos += 1

    def fail(message: str, at: int) -> SelectorError:
        return SelectorError(message, at)

    while True:
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == "}":
            return tuple(out), pos + 1
        match = _LABEL.match(text, pos)
        if not match:
            if pos >= len(text):
                raise fail("unclosed '{'", pos)
            raise fail(f"expected a label name at '{_clip(text[pos:])}'", pos)
        label, pos = match.group(), _skip_space(text, match.end())
        op = next((o for o in MATCH_OPS if text.startswith(o, pos)), None)
        if not selector and op != "=":
            op = None  # exposition lines only say label="value"
        if op is None:
            expected = "=, !=, =~ or !~" if selector else "="
            raise fail(f"expected {expected} after label '{label}'", pos)
        pos = _skip_space(text, pos + len(op))
        quotes = "\"'" if selector else '"'
        if pos >= len(text) or text[pos] not in quotes:
            raise fail(f"expected a quoted value for label '{label}'", pos)
        value_at = pos
        value, pos = _quoted(text, pos)
        pattern = None
        if op in ("=~", "!~"):
            try:
                pattern = re.compile(value)
            except re.error as exc:
                raise fail(
                    f"label '{label}': invalid regular expression ({exc})", value_at
                ) from None
        out.append(Matcher(label, op, value, pattern))
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos >= len(text) or text[pos] != "}":
            raise fail("expected ',' or '}' after a label value", pos)


def _quoted(text: str, pos: int) -> tuple[str, int]:
    quote = text[pos]
    out: list[str] = []
    i = pos + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise SelectorError("unterminated quoted value", pos)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
