"""Every corpus case (tests/hostile/corpus.py) through the real CLI: the exit code, a
located message, no traceback, nothing written outside --out, no partial output."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.corpus import CASES, Case
from tests.hostile.runner import run_case


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
    return pytest.param(case, id=f"{case.category}:{case.name}", marks=marks)


def test_the_corpus_is_large_and_named_uniquely() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 80


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_hostile_input(case: Case, tmp_path: Path) -> None:
    outcome = run_case(case, tmp_path)
    assert not outcome.problems, (outcome.problems, outcome.stderr[-2000:])
