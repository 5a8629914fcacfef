"""Hostile `health -C` conditions: bounded length and nesting, one line, exit 2, nothing
probed (issue 11, finding 4: 3,000 nested parentheses gave a RecursionError)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scalectl.errors import ExitCode
from scalectl.health.conditions import Observation, evaluate, parse_condition
from tests.conftest import Result

Cli = Callable[..., Result]
# Nothing listens here: a condition refused up front never reaches the probe.
URL = "http://127.0.0.1:9/health"


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "[STATUS] == " + "(" * 3000 + "200" + ")" * 3000,
            f'"[STATUS] == {"(" * 108}...", column 1001: longer than 1000 characters (6015)',
        ),
        (
            "[STATUS] == " + "(" * 33 + "200" + ")" * 33,
            f'"[STATUS] == {"(" * 33}200{")" * 33}", column 45: nested deeper than 32 parentheses',
        ),
        (
            "len(" * 40 + "[BODY]" + ")" * 40 + " == 1",
            f'"{"len(" * 30}...", column 132: nested deeper than 32 parentheses',
        ),
    ],
)
def test_too_deep_or_too_long_is_bad_input(cli: Cli, condition: str, message: str) -> None:
    result = cli("health", URL, "-C", condition)
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == f"error: --condition {message}\n"
    assert result.stdout == ""


def test_conditions_within_the_bounds_parse_and_evaluate() -> None:
    seen = Observation(connected=True, status=200)
    nested = parse_condition("[STATUS] == " + "(" * 32 + "[STATUS]" + ")" * 32)
    long_sum = parse_condition("[STATUS]" + " + 1" * 245 + " == 445")
    assert evaluate(nested, seen).ok
    assert evaluate(long_sum, seen).ok
