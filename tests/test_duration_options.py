"""Every command's time options take one duration grammar (scalectl.duration): `30s`, `2m`,
`500ms` or bare seconds, bounded, with a usage error (exit 2) otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scalectl.commands.common import duration_option
from scalectl.errors import ExitCode
from tests.conftest import Result

Cli = Callable[..., Result]


def _parse(option: object, text: str) -> float:
    parser = getattr(option, "parser")  # noqa: B009 (typer's OptionInfo keeps it as given)
    result: float = parser(text)
    return result


@pytest.mark.parametrize(
    ("text", "seconds"), [("8", 8.0), ("8s", 8.0), ("2m", 120.0), ("1m30s", 90.0), ("1500ms", 1.5)]
)
def test_durations_and_bare_seconds(text: str, seconds: float) -> None:
    assert _parse(duration_option(None, "--x", "", low=1, high=600), text) == seconds


def test_zero_only_where_the_lower_bound_is_zero() -> None:
    assert _parse(duration_option(None, "--settle", ""), "0") == 0
    with pytest.raises(Exception, match="longer than 0"):
        _parse(duration_option(None, "--outage", "", low=1), "0s")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("drill", "--outage", "2x", "redis-outage"), "expected a duration"),
        (("drill", "--outage", "10m", "redis-outage"), "must be between 1s and 300s"),
        (("drill", "--before", "-1", "worker-kill"), "expected a duration"),
        (("stack", "up", "--timeout", "0s"), "longer than 0 seconds"),
    ],
)
def test_bad_durations_are_usage_errors(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = cli(*args, "--state-dir", tmp_path / "state")
    assert result.code == ExitCode.BAD_INPUT, result.stdout + result.stderr
    assert message in result.stderr
    assert not (tmp_path / "state").exists()
