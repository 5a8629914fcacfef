"""The syntax tree of a condition, its vocabulary, and the error a malformed one raises.

Grammar (docs/health.md "Conditions"):

    condition := expr COMPARE expr            COMPARE: == != < <= > >=
    expr      := term (("+" | "-") term)*     arithmetic operators need spaces around them
    term      := atom (("*" | "/") atom)*
    atom      := NUMBER | WORD | "quoted" | PLACEHOLDER | NAME "(" args ")" | "(" expr ")"
    PLACEHOLDER := [STATUS] | [RESPONSE_TIME] | [CONNECTED] | [BODY](.key | [index])*
                 | [METRIC].selector          selector: name{label op "value", ...}
                 | [CERTIFICATE_EXPIRATION] | [DNS_RCODE]

A duration (48h, 7d) compared with [CERTIFICATE_EXPIRATION] is read as milliseconds, as
in Gatus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scalectl.errors import InputError
from scalectl.exposition import Selector

PLACEHOLDERS = (
    "STATUS",
    "RESPONSE_TIME",
    "CONNECTED",
    "BODY",
    "METRIC",
    "CERTIFICATE_EXPIRATION",
    "DNS_RCODE",
)
# Placeholders with a value even without a response (the rest need one).
ALWAYS_KNOWN = ("STATUS", "RESPONSE_TIME", "CONNECTED")
FUNCTIONS = ("len", "has", "pat", "any", "rate", "increase")
RATE_FUNCTIONS = ("rate", "increase")  # over two scrapes a window apart
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
ORDERING = ("<", "<=", ">", ">=")
ARITHMETIC = ("+", "-", "*", "/")
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


# How much of a condition an error message quotes: a hostile one may be megabytes long.
QUOTED_CHARS = 120


class ConditionError(InputError):
    """A malformed condition. `reason` and `column` (1-based) say what and where."""

    def __init__(self, text: str, reason: str, offset: int) -> None:
        self.text = text
        self.reason = reason
        self.column = offset + 1
        shown = text if len(text) <= QUOTED_CHARS else text[:QUOTED_CHARS] + "..."
        super().__init__(f'"{shown}", column {self.column}: {reason}')


@dataclass(frozen=True)
class Literal:
    """A number, a quoted string, true, false or null in a condition."""

    value: float | str | bool | None
    text: str
    pos: int


@dataclass(frozen=True)
class Placeholder:
    """[STATUS], [BODY].path, [METRIC].name{labels} and the like: a value taken from the
    response; `path` walks into [BODY], `selector` picks [METRIC] series."""

    name: str
    path: tuple[str | int, ...]
    selector: Selector | None
    text: str
    pos: int


@dataclass(frozen=True)
class Call:
    """A function applied to its arguments: len, has, pat, any, rate or increase."""

    func: str
    args: tuple[Node, ...]
    text: str
    pos: int


@dataclass(frozen=True)
class BinOp:
    """Arithmetic (+ - * /) on two values."""

    op: str
    left: Node
    right: Node
    text: str
    pos: int


Node = Literal | Placeholder | Call | BinOp


@dataclass(frozen=True)
class Condition:
    """A parsed condition: `left op right`, with the text it was parsed from."""

    text: str
    left: Node
    op: str
    right: Node

    def __str__(self) -> str:
        return self.text


def _nodes(cond: Condition) -> list[Node]:
    """Every node of a condition, depth first."""
    out: list[Node] = []
    stack: list[Node] = [cond.right, cond.left]
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, Call):
            stack.extend(reversed(node.args))
        elif isinstance(node, BinOp):
            stack.extend((node.right, node.left))
    return out


def selectors(cond: Condition) -> list[Selector]:
    """The metric selectors a condition reads (for docs and JSON output)."""
    return [n.selector for n in _nodes(cond) if isinstance(n, Placeholder) and n.selector]


def reads(cond: Condition, name: str) -> bool:
    """Whether the condition reads the placeholder `name` (CERTIFICATE_EXPIRATION, ...)."""
    return any(isinstance(n, Placeholder) and n.name == name for n in _nodes(cond))


def uses_rates(cond: Condition) -> bool:
    """Whether the condition needs two scrapes: rate() or increase()."""
    return any(isinstance(n, Call) and n.func in RATE_FUNCTIONS for n in _nodes(cond))
