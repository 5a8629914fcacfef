"""The size limit of every YAML input, set once per invocation by the CLI. Kept apart from
yamlsource so the CLI can set it at start-up without importing the YAML parser."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar

from scalectl.errors import InputError
from scalectl.usertext import shown

MAX_FILE_BYTES = 1024 * 1024  # a file is read only if it is a regular file this small
LIMIT_ENV = "SCALECTL_MAX_INPUT_BYTES"  # raises (or lowers) MAX_FILE_BYTES, on purpose
LIMIT_RANGE = (1024, 64 * 1024 * 1024)

# The limit of this invocation (cli.run sets it from the environment it was given).
LIMIT: ContextVar[int] = ContextVar("input_limit", default=MAX_FILE_BYTES)


def input_limit() -> int:
    """The size limit in bytes for YAML inputs of the current invocation."""
    return LIMIT.get()


def limit_of(environ: Mapping[str, str]) -> int:
    """The size limit of a YAML input: MAX_FILE_BYTES, or SCALECTL_MAX_INPUT_BYTES when set
    (a team whose plan outgrows 1 MiB raises it in its CI, not in the plan under review)."""
    text = environ.get(LIMIT_ENV, "").strip()
    if not text:
        return MAX_FILE_BYTES
    low, high = LIMIT_RANGE
    if not text.isdigit() or not low <= int(text) <= high:
        raise InputError(f"{LIMIT_ENV}={shown(text, 40)}: expected a number of bytes, {low}-{high}")
    return int(text)
