"""User-supplied text made safe to show inside one line of a message (issue 11).

Keys and values from plans, SLO files and argv reach error messages. Shown raw, a "\\n" in a
key printed a fake second error line, ANSI escapes reached the terminal and a bidi override
could reorder what a reviewer reads. Every such character is written as a visible escape.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable

# Bidi embeddings, overrides and isolates, and the marks: category Cf, listed for clarity.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Control (C0, DEL, C1), format (bidi, zero-width), line/paragraph separators, surrogates
# (undecodable bytes under surrogateescape), private use and unassigned code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
DEFAULT_LIMIT = 120


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _unsafe(char: str) -> bool:
    if char.isascii():
        return not (" " <= char <= "~")
    return char in _BIDI or unicodedata.category(char) in _UNSAFE_CATEGORIES


def shown(text: object, limit: int | None = DEFAULT_LIMIT) -> str:
    """`text` on one line with control, C1, line-separator and bidi characters escaped.

    Longer than `limit` characters (before escaping), it is cut and the cut is said, so a
    megabyte-long key cannot flood a CI log. Already-safe text comes back unchanged, so
    applying it twice is harmless (a backslash is left as it is).
    """
    value = str(text)
    cut = ""
    if limit is not None and len(value) > limit:
        cut = f"...(+{len(value) - limit} characters)"
        value = value[:limit]
    if all(not _unsafe(char) for char in value):
        return value + cut
    return "".join(_escape(c) if _unsafe(c) else c for c in value) + cut


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """ "; did you mean 'x'?" for the closest of `choices` to a mistyped `word`, else ""."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{shown(close[0])}'?" if close else ""
