"""scalectl.usertext.shown: user text inside one line of a message (issue 11)."""

from __future__ import annotations

import pytest

from scalectl.usertext import shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("services.api", "services.api"),
        ("a\nerror: fake", "a\\nerror: fake"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("a\x9bb", "a\\x9bb"),  # C1 CSI: an escape sequence on some terminals
        ("a\u2028b\u2029c\x85", "a\\u2028b\\u2029c\\x85"),
        ("evil\u202eexe.txt", "evil\\u202eexe.txt"),  # bidi override
        ("a\u2066b\u200fc", "a\\u2066b\\u200fc"),
        ("tab\there\r", "tab\\there\\r"),
        ("\udcff", "\\udcff"),  # an undecodable byte under surrogateescape
        ("café ✓ 日本", "café ✓ 日本"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_unsafe_characters_become_visible_escapes(text: str, expected: str) -> None:
    assert shown(text) == expected
    assert shown(shown(text)) == shown(text)  # the CLI's handler applies it once more


def test_long_text_is_cut_and_says_so() -> None:
    assert shown("k" * 500, 60) == "k" * 60 + "...(+440 characters)"
    assert shown("k" * 500, None) == "k" * 500
    assert shown(42) == "42"
