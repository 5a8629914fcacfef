"""Input files written for a test, and the problems scalectl reports for a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalectl.errors import ExitCode, InputError
from scalectl.plan.load import load_plan


def slo_file(tmp_path: Path, text: str) -> Path:
    """`text` written to slo.yaml in `tmp_path`; its path."""
    path = tmp_path / "slo.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, profile: str = "production") -> list[str]:
    """The problems load_plan reports for plan `text` (it must fail with exit 2), each without
    the file name that starts it."""
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        load_plan(path, profile)
    assert exc.value.exit_code == ExitCode.BAD_INPUT
    prefix = f"{path}:"
    return [line.removeprefix(prefix) for line in exc.value.lines] or [exc.value.message]
