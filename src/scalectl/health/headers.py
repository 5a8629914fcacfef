"""Request headers from flags and config files, checked before anything is sent: a header
httpx cannot send would otherwise fail every row with a protocol error at probe time."""

from __future__ import annotations

import re
from collections.abc import Mapping

from scalectl.errors import InputError

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a field name (RFC 9110 §5.1)
# A field value: visible characters, spaces and tabs, obs-text (RFC 9110 §5.5); no CR, LF,
# NUL or other control characters (they would split or end the request).
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a header name, or None."""
    if _TOKEN.fullmatch(name):
        return None
    return f"{name!r} is not a header name (letters, digits and !#$%&'*+.^_`|~- only)"


def value_problem(name: str, value: str) -> str | None:
    """Why `value` cannot be sent as the value of header `name`, or None."""
    if _VALUE.fullmatch(value):
        return None
    bad = next(c for c in value if not _VALUE.fullmatch(c))
    return (
        f"the value of {name} holds {bad!r}: a header value cannot hold line breaks or "
        "control characters"
    )


def header_problem(name: str, value: str) -> str | None:
    """Why `name: value` cannot be sent as a header, or None."""
    return name_problem(name) or value_problem(name, value)


def parse_header(text: str) -> tuple[str, str]:
    """`Name: value` from -H; InputError (exit 2) naming the flag otherwise."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip(" \t")
    if not sep or not name:
        raise InputError(f"-H {text!r}: expected 'Name: value'")
    problem = header_problem(name, value)
    if problem:
        raise InputError(f"-H {text!r}: {problem}")
    return name, value


def bearer(token_env: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """The Authorization header from a variable's value; the value is never printed."""
    token = environ.get(token_env, "").strip()
    if not token:
        raise InputError(f"--token-env {token_env}: the variable is not set or empty")
    if header_problem("Authorization", token):
        raise InputError(
            f"--token-env {token_env}: the value holds a line break or control character"
        )
    return "Authorization", f"Bearer {token}"
