from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

PLAN = EXAMPLES / "reference-app.yaml"


@pytest.fixture(scope="module")
def rendered_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference app's production render, written once per module."""
    from scalectl.files import write_tree
    from scalectl.plan import prepare, render_files

    out = tmp_path_factory.mktemp("rendered")
    write_tree(out, render_files(prepare(PLAN, "production")))
    return out


@pytest.fixture
def rendered(rendered_once: Path, tmp_path: Path) -> Path:
    """A private copy to break."""
    copy = tmp_path / "rendered"
    shutil.copytree(rendered_once, copy)
    return copy
