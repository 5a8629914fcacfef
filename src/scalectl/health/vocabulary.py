"""Status vocabularies: which words a JSON health body's `status` may say, and what each
means (pass, warn or fail). Built in: the IETF health-check draft's, Spring Boot
Actuator's and the healthy/degraded/critical family; a config may give its own map.

Words match case-insensitively. A word the vocabulary does not know is a fail, never a
pass: a service that answers `maintenance` must not slip through a gate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard, get_args

Status = Literal["pass", "warn", "fail"]
STATUSES: tuple[Status, ...] = get_args(Status)
WORD_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")
WORD_RULE = "a letter, then up to 31 of A-Z a-z 0-9 _ . -"
MAX_WORDS = 32


@dataclass(frozen=True)
class Vocabulary:
    """A name (a built-in's, or `custom`) and its words, lower-cased, each to a status."""

    name: str
    words: tuple[tuple[str, Status], ...]

    def status_of(self, word: str) -> Status | None:
        """The status `word` means (any case), or None when the vocabulary does not know it."""
        return dict(self.words).get(word.lower())

    def unknown(self, word: str) -> str:
        """Why `word` fails: it is not one of this vocabulary's words."""
        known = ", ".join(w for w, _ in self.words)
        shown = word if len(word) <= 40 else word[:40] + "..."
        return f"status {shown!r} is not in the vocabulary {self.name} ({known})"


def _vocabulary(name: str, words: Mapping[str, Status]) -> Vocabulary:
    return Vocabulary(name, tuple((w.lower(), s) for w, s in words.items()))


IETF = _vocabulary("ietf", {"pass": "pass", "ok": "pass", "warn": "warn", "fail": "fail"})
ACTUATOR = _vocabulary(
    "actuator", {"UP": "pass", "UNKNOWN": "warn", "DOWN": "fail", "OUT_OF_SERVICE": "fail"}
)
HEALTHY = _vocabulary(
    "healthy",
    {"healthy": "pass", "degraded": "warn", "critical": "fail", "unhealthy": "fail"},
)
# Without a choice: every built-in word, plus the draft's other aliases (up, error, down).
ANY = _vocabulary(
    "any",
    {
        **dict(IETF.words),
        **dict(ACTUATOR.words),
        **dict(HEALTHY.words),
        "error": "fail",
    },
)
BUILTIN: dict[str, Vocabulary] = {v.name: v for v in (ANY, IETF, ACTUATOR, HEALTHY)}


def builtin(name: str) -> Vocabulary:
    """The built-in vocabulary called `name`. Raises ValueError naming the built-ins."""
    found = BUILTIN.get(name)
    if found is None:
        raise ValueError(f"unknown vocabulary {name!r}; built in: {', '.join(BUILTIN)}")
    return found


def custom(words: Mapping[str, str]) -> Vocabulary:
    """A vocabulary from a config's own map `{word: pass|warn|fail}`. Raises ValueError with
    every problem, one per line (the caller places them in the file)."""
    problems = map_problems(words)
    if problems:
        raise ValueError("; ".join(p.message for p in problems))
    return Vocabulary("custom", tuple((w.lower(), s) for w, s in words.items() if _is_status(s)))


@dataclass(frozen=True)
class WordProblem:
    """One problem of a custom map: the word at fault (None: the whole map), whether the
    word itself is wrong (else its status), and why."""

    word: object | None
    in_word: bool
    message: str


def map_problems(words: Mapping[Any, Any]) -> list[WordProblem]:
    """What is wrong with a custom map `{word: pass|warn|fail}`; empty when nothing is."""
    problems: list[WordProblem] = []
    if not words:
        problems.append(WordProblem(None, False, "must map at least one word"))
    if len(words) > MAX_WORDS:
        problems.append(WordProblem(None, False, f"at most {MAX_WORDS} words, got {len(words)}"))
    seen: dict[str, str] = {}
    for word, status in words.items():
        if not isinstance(word, str) or not WORD_PATTERN.match(word):
            why = f"{str(word)[:40]!r} is not a status word: {WORD_RULE}"
            problems.append(WordProblem(word, True, why))
            continue
        if word.lower() in seen:
            why = f"{word!r} repeats {seen[word.lower()]!r} (words match in any case)"
            problems.append(WordProblem(word, True, why))
        seen.setdefault(word.lower(), word)
        if not _is_status(status):
            why = f"must be pass, warn or fail, got {str(status)[:40]!r}"
            problems.append(WordProblem(word, False, why))
    return problems


def _is_status(value: object) -> TypeGuard[Status]:
    return isinstance(value, str) and value in STATUSES
