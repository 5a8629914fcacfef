from __future__ import annotations

import pytest

from scalectl.health.duration import parse_duration


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
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "expected a duration such as 5s, 500ms or 2m, got 'soon'"),
        ("5 s", "expected a duration such as 5s, 500ms or 2m, got '5 s'"),
        ("", "expected a duration such as 5s, 500ms or 2m, got ''"),
        ("0s", "must be longer than 0 seconds, got '0s'"),
    ],
)
def test_bad_durations(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message
