"""The recursive-descent parser: tokens to a Condition, or a ConditionError that quotes the
condition, gives the column and says what is wrong (bad input, exit 2)."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from scalectl.duration import parse_duration
from scalectl.health.conditions.syntax import (
    FUNCTIONS,
    NUMBER,
    ORDERING,
    RATE_FUNCTIONS,
    BinOp,
    Call,
    Condition,
    ConditionError,
    Literal,
    Node,
    Placeholder,
)
from scalectl.health.conditions.tokens import Tok, tokens

# Bounds on a condition (docs/health.md): the parser and the evaluator recurse once per
# level of parentheses or function calls, and a condition comes from untrusted flags and
# files (issue 11: 3,000 nested parentheses gave a RecursionError).
MAX_LENGTH = 1000
MAX_NESTING = 32


def parse_condition(text: str) -> Condition:
    """Parse one condition; ConditionError (exit 2) names what is wrong and the column."""
    if len(text) > MAX_LENGTH:
        raise ConditionError(text, f"longer than {MAX_LENGTH} characters ({len(text)})", MAX_LENGTH)
    toks = tokens(text)
    depth = 0
    for tok in toks:
        depth += {"lp": 1, "rp": -1}.get(tok.kind, 0)
        if depth > MAX_NESTING:
            raise ConditionError(text, f"nested deeper than {MAX_NESTING} parentheses", tok.pos)
    return _Parser(text, toks).condition()


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) or (
        isinstance(value, str) and NUMBER.fullmatch(value.strip()) is not None
    )


class _Parser:
    def __init__(self, text: str, toks: list[Tok]) -> None:
        self.text = text
        self.toks = toks
        self.i = 0

    def fail(self, reason: str, at: int) -> ConditionError:
        return ConditionError(self.text, reason, at)

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
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
        left, right = _durations(left, right), _durations(right, left)
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

    def binop(self, left: Node, operand: Callable[[], Node]) -> BinOp:
        op = self.take()
        if self.peek().kind == "end":
            raise self.fail(f"missing a value after '{op.text}'", self.peek().pos)
        right = operand()
        for side in (left, right):
            if isinstance(side, Literal) and not _is_number(side.value):
                raise self.fail(f"'{op.text}' needs numbers; '{side.text}' is not one", side.pos)
            if isinstance(side, Call) and side.func in ("pat", "any", "has"):
                raise self.fail(f"'{op.text}' needs numbers; {side.func}() is not one", side.pos)
        end = right.pos + len(right.text)
        return BinOp(op.text, left, right, self.text[left.pos : end], left.pos)

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind in ("num", "str"):
            return Literal(tok.value, tok.text, tok.pos)
        if tok.kind == "ph":
            name, path, selector = tok.value
            return Placeholder(name, path, selector, tok.text, tok.pos)
        if tok.kind == "lp":
            inner = self.expr()
            close = self.take()
            if close.kind != "rp":
                raise self.fail("missing ')'", close.pos)
            if isinstance(inner, BinOp):  # keeps its parentheses in messages
                return BinOp(inner.op, inner.left, inner.right, self.source(tok.pos), tok.pos)
            return inner
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

    def call(self, name: Tok) -> Call:
        if name.text not in FUNCTIONS:
            close = difflib.get_close_matches(name.text, FUNCTIONS, n=1, cutoff=0.6)
            hint = (
                f"; did you mean {close[0]}()?"
                if close
                else "; expected " + ", ".join(FUNCTIONS[:-1]) + f" or {FUNCTIONS[-1]}"
            )
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
        self.check_call(call)
        return call

    def check_call(self, call: Call) -> None:
        func, args = call.func, call.args
        if func in ("len", "has", "pat", *RATE_FUNCTIONS) and len(args) != 1:
            raise self.fail(f"{func}() takes exactly one argument", call.pos)
        if func == "any" and not args:
            raise self.fail("any() needs at least one value", call.pos)
        if func == "has" and not isinstance(args[0], Placeholder):
            raise self.fail("has() takes a placeholder such as has([BODY].errors)", call.pos)
        if func == "pat" and not isinstance(args[0], Literal):
            raise self.fail("pat() takes a pattern such as pat(*pass*)", call.pos)
        if func in RATE_FUNCTIONS and not (
            isinstance(args[0], Placeholder) and args[0].name == "METRIC"
        ):
            raise self.fail(
                f"{func}() takes a metric such as {func}([METRIC].http_requests_total)", call.pos
            )
        for arg in args:
            if isinstance(arg, Call) and arg.func in ("pat", "any"):
                raise self.fail(f"{arg.func}() cannot be nested", arg.pos)

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


def _durations(node: Node, other: Node) -> Node:
    """`node` as milliseconds when it is a duration (48h, 7d) compared with
    [CERTIFICATE_EXPIRATION], as Gatus reads it; otherwise unchanged."""
    if not (
        isinstance(other, Placeholder)
        and other.name == "CERTIFICATE_EXPIRATION"
        and isinstance(node, Literal)
        and isinstance(node.value, str)
        and not _is_number(node.value)
    ):
        return node
    try:
        seconds = parse_duration(node.value)
    except ValueError:
        return node  # reported as not a number by check()
    return Literal(seconds * 1000, node.text, node.pos)


def _reads_response(node: Node) -> bool:
    if isinstance(node, Placeholder):
        return True
    if isinstance(node, Call):
        return any(_reads_response(a) for a in node.args)
    if isinstance(node, BinOp):
        return _reads_response(node.left) or _reads_response(node.right)
    return False
