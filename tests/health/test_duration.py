"""One duration grammar for health flags, health configs and checklist files."""

from __future__ import annotations

import pytest

from scalectl.duration import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("120", 120),
        ("120s", 120),
        ("2m", 120),
        ("1m30s", 90),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("1h", 3600),
        ("7d", 7 * 86400),
        ("1d12h", 36 * 3600),
        ("2w", 14 * 86400),
        ("1h0m0.5s", 3600.5),
        (" 5S ", 5),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "expected a duration such as 500ms, 5s, 2m, 1h30m or 7d, got 'soon'"),
        ("5 s", "expected a duration such as 500ms, 5s, 2m, 1h30m or 7d, got '5 s'"),
        ("1m 30s", "expected a duration such as 500ms, 5s, 2m, 1h30m or 7d, got '1m 30s'"),
        ("", "expected a duration such as 500ms, 5s, 2m, 1h30m or 7d, got ''"),
        ("-5s", "expected a duration such as 500ms, 5s, 2m, 1h30m or 7d, got '-5s'"),
        ("0s", "must be longer than 0 seconds, got '0s'"),
    ],
)
def test_bad_durations(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


def test_zero_only_where_it_means_something() -> None:
    # A checklist's valid_for: 0 means "never reuse"; a probe timeout of 0 means nothing.
    assert parse_duration("0", allow_zero=True) == 0
    assert parse_duration("0s", allow_zero=True) == 0


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.5, 5, 90, 720, 5 * 3600, 3.5 * 86400)] == [
        "0.5s",
        "5s",
        "1.5m",
        "12m",
        "5h",
        "3.5d",
    ]
