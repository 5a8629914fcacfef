"""Gatus-style conditions (`[STATUS] == 200`, `[BODY].status == pass`, `len([BODY].checks) >
0`, `[METRIC].queue_depth{queue="analyse"} < 100`): a tokenizer, a recursive-descent parser
and an evaluator. No `eval`: a condition can only read the response it is checked against.

The syntax, every placeholder and operator, and the evaluation rules are in docs/health.md.
Grammar:

    condition := expr COMPARE expr            COMPARE: == != < <= > >=
    expr      := term (("+" | "-") term)*     arithmetic operators need spaces around them
    term      := atom (("*" | "/") atom)*
    atom      := NUMBER | WORD | "quoted" | PLACEHOLDER | NAME "(" args ")" | "(" expr ")"
    PLACEHOLDER := [STATUS] | [RESPONSE_TIME] | [CONNECTED] | [BODY](.key | [index])*
                 | [METRIC].selector          selector: name{label op "value", ...}
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import math
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

from scalectl.errors import InputError
from scalectl.health import exposition
from scalectl.health.exposition import Selector, SelectorError

PLACEHOLDERS = ("STATUS", "RESPONSE_TIME", "CONNECTED", "BODY", "METRIC")
FUNCTIONS = ("len", "has", "pat", "any")
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
ORDERING = ("<", "<=", ">", ">=")
ARITHMETIC = ("+", "-", "*", "/")
_STOP = set("()[],\"'=!<>")
_KEY = re.compile(r"[^\s.\[\]()\",'=!<>]+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_PLACEHOLDER = re.compile(r"\[([A-Za-z_]+)\]")


class ConditionError(InputError):
    """A malformed condition. `reason` and `column` (1-based) say what and where."""

    def __init__(self, text: str, reason: str, offset: int) -> None:
        self.text = text
        self.reason = reason
        self.column = offset + 1
        super().__init__(f'"{text}", column {self.column}: {reason}')


# --- the syntax tree ------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: float | str | bool | None
    text: str
    pos: int


@dataclass(frozen=True)
class Placeholder:
    name: str
    path: tuple[str | int, ...]
    selector: Selector | None
    text: str
    pos: int


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]
    text: str
    pos: int


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Node
    right: Node
    text: str
    pos: int


Node = Literal | Placeholder | Call | BinOp


@dataclass(frozen=True)
class Condition:
    text: str
    left: Node
    op: str
    right: Node

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class ConditionResult:
    condition: str
    ok: bool
    detail: str  # the condition with what each side resolved to, or why it could not be


# --- tokens ---------------------------------------------------------------------------


class _Tok(NamedTuple):
    kind: str  # ph op arith lp rp comma str num word end
    text: str
    pos: int
    value: Any = None


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    i, n = 0, len(text)

    def fail(reason: str, at: int) -> ConditionError:
        return ConditionError(text, reason, at)

    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "[":
            tok = _placeholder(text, i)
            out.append(tok)
            i = tok.pos + len(tok.text)
        elif c in "=!<>":
            two = text[i : i + 2]
            if two in ("==", "!=", "<=", ">="):
                out.append(_Tok("op", two, i))
                i += 2
            elif c in "<>":
                out.append(_Tok("op", c, i))
                i += 1
            elif c == "=":
                raise fail("unknown operator '='; use == to compare", i)
            else:
                raise fail("unknown operator '!'; use != to compare", i)
        elif c in "(),":
            out.append(_Tok({"(": "lp", ")": "rp", ",": "comma"}[c], c, i))
            i += 1
        elif c in "\"'":
            end = text.find(c, i + 1)
            if end < 0:
                raise fail(f"unterminated string (missing closing {c})", i)
            out.append(_Tok("str", text[i : end + 1], i, text[i + 1 : end]))
            i = end + 1
        elif c == "]":
            raise fail("unexpected ']'", i)
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _STOP:
                j += 1
            word = text[i:j]
            if word in ARITHMETIC:
                out.append(_Tok("arith", word, i))
            elif _NUMBER.fullmatch(word):
                number = float(word)
                out.append(_Tok("num", word, i, int(number) if number.is_integer() else number))
            else:
                out.append(_Tok("word", word, i, word))
            i = j
    out.append(_Tok("end", "", n))
    return out


def _placeholder(text: str, i: int) -> _Tok:
    match = _PLACEHOLDER.match(text, i)
    if not match:
        raise ConditionError(text, "expected a placeholder such as [STATUS] or [BODY]", i)
    name = match.group(1)
    if name not in PLACEHOLDERS:
        close = difflib.get_close_matches(name.upper(), PLACEHOLDERS, n=1, cutoff=0.6)
        hint = (
            f"; did you mean [{close[0]}]?"
            if close
            else "; expected " + ", ".join(f"[{p}]" for p in PLACEHOLDERS)
        )
        raise ConditionError(text, f"unknown placeholder [{name}]{hint}", i)
    j = match.end()
    path: list[str | int] = []
    selector: Selector | None = None
    if name == "BODY":
        j = _body_path(text, j, path)
    elif name == "METRIC":
        if j >= len(text) or text[j] != ".":
            raise ConditionError(text, '[METRIC] needs a metric: [METRIC].name{label="value"}', j)
        try:
            selector, j = exposition.parse_selector(text, j + 1)
        except SelectorError as exc:
            raise ConditionError(text, f"[METRIC]: {exc.message}", exc.offset) from None
    elif j < len(text) and text[j] in ".[":
        raise ConditionError(text, f"[{name}] has no fields; only [BODY] takes a path", j)
    return _Tok("ph", text[i:j], i, (name, tuple(path), selector))


def _body_path(text: str, j: int, path: list[str | int]) -> int:
    n = len(text)
    while j < n:
        if text[j] == ".":
            j += 1
            if j < n and text[j] in "\"'":
                end = text.find(text[j], j + 1)
                if end < 0:
                    raise ConditionError(text, "unterminated quoted key", j)
                path.append(text[j + 1 : end])
                j = end + 1
                continue
            match = _KEY.match(text, j)
            if not match:
                raise ConditionError(text, "expected a key after '.'", j)
            path.append(match.group())
            j = match.end()
        elif text[j] == "[":
            match = re.compile(r"\[(\d+)\]").match(text, j)
            if not match:
                raise ConditionError(text, "expected a list index such as [0]", j)
            path.append(int(match.group(1)))
            j = match.end()
        else:
            break
    return j


# --- the parser -----------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def fail(self, reason: str, at: int) -> ConditionError:
        return ConditionError(self.text, reason, at)

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def source(self, start: int) -> str:
        end = self.toks[self.i - 1]
        return self.text[start : end.pos + len(end.text)]

    def condition(self) -> Condition:
        if self.peek().kind == "end":
            raise self.fail("empty condition; expected something like [STATUS] == 200", 0)
        left = self.expr()
        tok = self.take()
        if tok.kind != "op":
            if tok.kind == "end":
                raise self.fail("missing a comparison (==, !=, <, <=, >, >=)", tok.pos)
            raise self.fail(
                f"expected a comparison (==, !=, <, <=, >, >=), got '{tok.text}'", tok.pos
            )
        if self.peek().kind == "end":
            raise self.fail(f"missing a value after '{tok.text}'", self.peek().pos)
        right = self.expr()
        extra = self.peek()
        if extra.kind != "end":
            if extra.kind == "op":
                raise self.fail(
                    f"only one comparison per condition; unexpected '{extra.text}'", extra.pos
                )
            raise self.fail(f"unexpected '{extra.text}' after the condition", extra.pos)
        cond = Condition(self.text.strip(), left, tok.text, right)
        self.check(cond)
        return cond

    def expr(self) -> Node:
        node = self.term()
        while self.peek().kind == "arith" and self.peek().text in "+-":
            node = self.binop(node, self.term)
        return node

    def term(self) -> Node:
        node = self.atom()
        while self.peek().kind == "arith" and self.peek().text in "*/":
            node = self.binop(node, self.atom)
        return node

    def binop(self, left: Node, operand: Any) -> BinOp:
        op = self.take()
        if self.peek().kind == "end":
            raise self.fail(f"missing a value after '{op.text}'", self.peek().pos)
        right: Node = operand()
        for side in (left, right):
            if isinstance(side, Literal) and not _is_number(side.value):
                raise self.fail(f"'{op.text}' needs numbers; '{side.text}' is not one", side.pos)
            if isinstance(side, Call) and side.func in ("pat", "any", "has"):
                raise self.fail(f"'{op.text}' needs numbers; {side.func}() is not one", side.pos)
        return BinOp(op.text, left, right, self.text[left.pos : self._end(right)], left.pos)

    def _end(self, node: Node) -> int:
        return node.pos + len(node.text)

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            return Literal(tok.value, tok.text, tok.pos)
        if tok.kind == "str":
            return Literal(tok.value, tok.text, tok.pos)
        if tok.kind == "ph":
            name, path, selector = tok.value
            return Placeholder(name, path, selector, tok.text, tok.pos)
        if tok.kind == "lp":
            inner = self.expr()
            close = self.take()
            if close.kind != "rp":
                raise self.fail("missing ')'", close.pos)
            return _with_text(inner, self.source(tok.pos), tok.pos)
        if tok.kind == "word":
            if self.peek().kind == "lp":
                return self.call(tok)
            value: float | str | bool | None = {"true": True, "false": False, "null": None}.get(
                tok.text, tok.text
            )
            return Literal(value, tok.text, tok.pos)
        if tok.kind == "end":
            raise self.fail("missing a value", tok.pos)
        raise self.fail(f"expected a value, got '{tok.text}'", tok.pos)

    def call(self, name: _Tok) -> Call:
        if name.text not in FUNCTIONS:
            close = difflib.get_close_matches(name.text, FUNCTIONS, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}()?" if close else "; expected len, has, pat or any"
            raise self.fail(f"unknown function '{name.text}'{hint}", name.pos)
        self.take()  # (
        args: list[Node] = []
        star = self.peek()
        if name.text == "pat" and star.text == "*" and self.toks[self.i + 1].kind == "rp":
            self.take()  # pat(*): a lone * reads as multiplication otherwise
            args.append(Literal("*", "*", star.pos))
            self.take()
        elif self.peek().kind != "rp":
            while True:
                args.append(self.expr())
                sep = self.take()
                if sep.kind == "rp":
                    break
                if sep.kind != "comma":
                    raise self.fail(f"missing ')' to close {name.text}(", sep.pos)
        else:
            self.take()
        call = Call(name.text, tuple(args), self.source(name.pos), name.pos)
        if name.text in ("len", "has", "pat") and len(args) != 1:
            raise self.fail(f"{name.text}() takes exactly one argument", name.pos)
        if name.text == "any" and not args:
            raise self.fail("any() needs at least one value", name.pos)
        if name.text == "has" and not isinstance(args[0], Placeholder):
            raise self.fail("has() takes a placeholder such as has([BODY].errors)", name.pos)
        if name.text == "pat" and not isinstance(args[0], Literal):
            raise self.fail("pat() takes a pattern such as pat(*pass*)", name.pos)
        for arg in args:
            if isinstance(arg, Call) and arg.func in ("pat", "any"):
                raise self.fail(f"{arg.func}() cannot be nested", arg.pos)
        return call

    def check(self, cond: Condition) -> None:
        for side in (cond.left, cond.right):
            if isinstance(side, Call) and side.func in ("pat", "any") and cond.op in ORDERING:
                raise self.fail(
                    f"{side.func}() can only be compared with == or !=, not '{cond.op}'",
                    side.pos,
                )
            if cond.op in ORDERING and isinstance(side, Literal) and not _is_number(side.value):
                raise self.fail(
                    f"'{cond.op}' compares numbers; '{side.text}' is not a number", side.pos
                )
        if not (_reads_response(cond.left) or _reads_response(cond.right)):
            raise self.fail("compares two constants; use a placeholder such as [STATUS]", 0)


def _with_text(node: Node, text: str, pos: int) -> Node:
    """A parenthesised expression keeps its parentheses in messages."""
    if isinstance(node, BinOp):
        return BinOp(node.op, node.left, node.right, text, pos)
    return node


def _reads_response(node: Node) -> bool:
    if isinstance(node, Placeholder):
        return True
    if isinstance(node, Call):
        return any(_reads_response(a) for a in node.args)
    if isinstance(node, BinOp):
        return _reads_response(node.left) or _reads_response(node.right)
    return False


def parse_condition(text: str) -> Condition:
    """Parse one condition; ConditionError (exit 2) names what is wrong and the column."""
    return _Parser(text).condition()


def selectors(cond: Condition) -> list[Selector]:
    """The metric selectors a condition reads (for docs and JSON output)."""
    found: list[Selector] = []

    def walk(node: Node) -> None:
        if isinstance(node, Placeholder) and node.selector is not None:
            found.append(node.selector)
        elif isinstance(node, Call):
            for arg in node.args:
                walk(arg)
        elif isinstance(node, BinOp):
            walk(node.left)
            walk(node.right)

    walk(cond.left)
    walk(cond.right)
    return found


# --- what a condition is evaluated against --------------------------------------------


class Observation:
    """What one HTTP probe saw. Bodies are parsed (JSON, exposition) once, on first use."""

    def __init__(
        self,
        *,
        connected: bool,
        status: int = 0,
        elapsed_ms: float = 0.0,
        body: bytes = b"",
        content_type: str = "",
        error: str = "",
    ) -> None:
        self.connected = connected
        self.status = status
        self.elapsed_ms = elapsed_ms
        self.body = body
        self.content_type = content_type
        self.error = error

    @cached_property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @cached_property
    def json(self) -> tuple[bool, Any]:
        try:
            return True, json.loads(self.body)
        except ValueError:
            return False, None

    @cached_property
    def metrics(self) -> exposition.Exposition | str:
        """The parsed exposition, or why the body is not one."""
        try:
            return exposition.parse(self.text)
        except exposition.ExpositionError as exc:
            return f"the body is not the Prometheus text format ({exc})"


# --- evaluation -----------------------------------------------------------------------


class _Unresolved(Exception):
    """A value the response cannot supply; the condition fails with this message."""


@dataclass(frozen=True)
class _Pattern:
    pattern: str


@dataclass(frozen=True)
class _AnyOf:
    values: tuple[Any, ...]


def evaluate(cond: Condition, obs: Observation) -> ConditionResult:
    try:
        left = _value(cond.left, obs)
        right = _value(cond.right, obs)
        ok = _compare(left, cond.op, right)
    except _Unresolved as exc:
        return ConditionResult(cond.text, False, f"{cond.text}: {exc}")
    detail = f"{_show(cond.left, left)} {cond.op} {_show(cond.right, right)}"
    return ConditionResult(cond.text, ok, detail)


def _value(node: Node, obs: Observation) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Placeholder):
        return _placeholder_value(node, obs)
    if isinstance(node, BinOp):
        return _arith(node, _value(node.left, obs), _value(node.right, obs))
    if node.func == "has":
        arg = node.args[0]
        assert isinstance(arg, Placeholder)
        return _has(arg, obs)
    if node.func == "pat":
        arg = node.args[0]
        assert isinstance(arg, Literal)
        return _Pattern(arg.text if not isinstance(arg.value, str) else arg.value)
    if node.func == "any":
        return _AnyOf(tuple(_value(a, obs) for a in node.args))
    value = _value(node.args[0], obs)  # len
    if isinstance(value, str | list | dict):
        return len(value)
    raise _Unresolved(f"len() needs text, a list or an object, got {_show_value(value)}")


def _placeholder_value(node: Placeholder, obs: Observation) -> Any:
    if node.name == "CONNECTED":
        return obs.connected
    if node.name == "STATUS":
        return obs.status
    if node.name == "RESPONSE_TIME":
        return round(obs.elapsed_ms, 1)
    if not obs.connected:
        raise _Unresolved(f"no response ({obs.error or 'not connected'})")
    if node.name == "METRIC":
        assert node.selector is not None
        return _metric(node.selector, obs)
    if not node.path:
        return obs.text.strip()
    ok, data = obs.json
    if not ok:
        raise _Unresolved("the body is not JSON")
    return _walk(data, node.path)


def _walk(data: Any, path: tuple[str | int, ...]) -> Any:
    here = "[BODY]"
    for part in path:
        if isinstance(part, int):
            if not isinstance(data, list):
                raise _Unresolved(f"{here} is not a list")
            if part >= len(data):
                raise _Unresolved(f"{here} has {len(data)} items, no [{part}]")
            data = data[part]
            here += f"[{part}]"
        else:
            if not isinstance(data, dict):
                raise _Unresolved(f"{here} is not an object")
            if part not in data:
                raise _Unresolved(f"{here} has no key '{part}'")
            data = data[part]
            here += f".{part}"
    return data


def _metric(selector: Selector, obs: Observation) -> float:
    """The sum over every series the selector matches. No match: a counter (declared so,
    or named *_total) is 0, nothing counted yet; anything else is an error."""
    parsed = obs.metrics
    if isinstance(parsed, str):
        raise _Unresolved(parsed)
    samples = parsed.select(selector)
    if samples:
        return math.fsum(s.value for s in samples)
    if selector.name.endswith("_total") or _declared_counter(obs.text, selector.name):
        return 0.0
    if not parsed.exposes(selector.name):
        raise _Unresolved(f"no metric named '{selector.name}'")
    raise _Unresolved(f"no series matches {selector}")


def _declared_counter(text: str, name: str) -> bool:
    return f"# TYPE {name} counter" in text


def _has(node: Placeholder, obs: Observation) -> bool:
    if node.name in ("STATUS", "RESPONSE_TIME", "CONNECTED"):
        return obs.connected
    if node.name == "METRIC":
        parsed = obs.metrics if obs.connected else ""
        assert node.selector is not None
        return not isinstance(parsed, str) and bool(parsed.select(node.selector))
    try:
        _placeholder_value(node, obs)
    except _Unresolved:
        return False
    return True


def _arith(node: BinOp, left: Any, right: Any) -> float:
    a, b = _number(left, node.left), _number(right, node.right)
    if node.op == "+":
        return a + b
    if node.op == "-":
        return a - b
    if node.op == "*":
        return a * b
    if b == 0:
        # 0/0 is 0: a ratio of errors over requests with no requests has no errors.
        if a == 0:
            return 0.0
        raise _Unresolved(f"division by zero in {node.text}")
    return a / b


def _number(value: Any, node: Node) -> float:
    number = _as_number(value)
    if number is None:
        raise _Unresolved(f"{node.text} is {_show_value(value)}, not a number")
    return number


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def _is_number(value: Any) -> bool:
    return _as_number(value) is not None


def _compare(left: Any, op: str, right: Any) -> bool:
    if op in ("==", "!="):
        equal = _equal(left, right)
        return equal if op == "==" else not equal
    a, b = _as_number(left), _as_number(right)
    for value, number in ((left, a), (right, b)):
        if number is None:
            raise _Unresolved(f"'{op}' compares numbers; got {_show_value(value)}")
    assert a is not None and b is not None
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _equal(left: Any, right: Any) -> bool:
    if isinstance(right, _Pattern | _AnyOf) and not isinstance(left, _Pattern | _AnyOf):
        left, right = right, left
    if isinstance(left, _Pattern):
        return fnmatch.fnmatchcase(_plain(right), left.pattern)
    if isinstance(left, _AnyOf):
        return any(_equal(v, right) for v in left.values)
    a, b = _as_number(left), _as_number(right)
    if a is not None and b is not None:
        return a == b
    return _plain(left) == _plain(right)


def _plain(value: Any) -> str:
    """The text a value compares as: JSON spelling for true/false/null and containers."""
    if value is None or isinstance(value, bool | list | dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _show(node: Node, value: Any) -> str:
    if isinstance(node, Literal) or (isinstance(node, Call) and node.func in ("pat", "any")):
        return node.text
    return f"{node.text} ({_show_value(value)})"


def _show_value(value: Any) -> str:
    if isinstance(value, _Pattern):
        return f"pat({value.pattern})"
    if isinstance(value, _AnyOf):
        return "any(" + ", ".join(_show_value(v) for v in value.values) + ")"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = _plain(value)
    return text if len(text) <= 60 else text[:57] + "..."
