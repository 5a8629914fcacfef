"""The tokenizer: a condition's text as operators, values and placeholders (a placeholder's
[BODY] path and [METRIC] selector are read here, whole, so the parser sees one token)."""

from __future__ import annotations

import difflib
import re
from typing import Any, NamedTuple

from scalectl import exposition
from scalectl.exposition import Selector, SelectorError
from scalectl.health.conditions.syntax import ARITHMETIC, NUMBER, PLACEHOLDERS, ConditionError

_STOP = set("()[],\"'=!<>")
_KEY = re.compile(r"[^\s.\[\]()\",'=!<>]+")
_INDEX = re.compile(r"\[(\d+)\]")
_PLACEHOLDER = re.compile(r"\[([A-Za-z_]+)\]")


class Tok(NamedTuple):
    """One token of a condition: its kind, its text, where it starts (0-based), and for numbers
    and strings its value."""

    kind: str  # ph op arith lp rp comma str num word end
    text: str
    pos: int
    value: Any = None


def tokens(text: str) -> list[Tok]:
    """The tokens of a condition's text, ending with an `end` token. Raises ConditionError
    where the text cannot be split into tokens (an unclosed string, an unknown placeholder,
    a stray character)."""
    out: list[Tok] = []
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
                out.append(Tok("op", two, i))
                i += 2
            elif c in "<>":
                out.append(Tok("op", c, i))
                i += 1
            elif c == "=":
                raise fail("unknown operator '='; use == to compare", i)
            else:
                raise fail("unknown operator '!'; use != to compare", i)
        elif c in "(),":
            out.append(Tok({"(": "lp", ")": "rp", ",": "comma"}[c], c, i))
            i += 1
        elif c in "\"'":
            end = text.find(c, i + 1)
            if end < 0:
                raise fail(f"unterminated string (missing closing {c})", i)
            out.append(Tok("str", text[i : end + 1], i, text[i + 1 : end]))
            i = end + 1
        elif c == "]":
            raise fail("unexpected ']'", i)
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _STOP:
                j += 1
            word = text[i:j]
            if word in ARITHMETIC:
                out.append(Tok("arith", word, i))
            elif NUMBER.fullmatch(word):
                number = float(word)
                out.append(Tok("num", word, i, int(number) if number.is_integer() else number))
            else:
                out.append(Tok("word", word, i, word))
            i = j
    out.append(Tok("end", "", n))
    return out


def _placeholder(text: str, i: int) -> Tok:
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
    return Tok("ph", text[i:j], i, (name, tuple(path), selector))


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
            match = _INDEX.match(text, j)
            if not match:
                raise ConditionError(text, "expected a list index such as [0]", j)
            path.append(int(match.group(1)))
            j = match.end()
        else:
            break
    return j
