"""The layering docs/architecture.md draws, checked against the imports in the code: feature
packages import only those below them, neutral modules import no feature package, and
typer and rich stay in cli.py, commands/ and output.py."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "scalectl"
# Lower ranks are imported by higher ones, never the reverse; equal ranks do not mix.
RANK = {"plan": 0, "stack": 1, "health": 2, "loadtest": 2, "drill": 3, "checklist": 4}
# Top-level modules that are features rather than neutral helpers.
FEATURES = {"doctor.py": 2, "cli.py": 9, "__main__.py": 9}
EDGE = {"cli.py", "output.py"}  # with commands/, the only places for typer and rich


def imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def problems(root: Path = SRC) -> Iterator[str]:
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        package = parts[0] if len(parts) > 1 else None
        if package == "commands" or path.name in EDGE:
            rank = 9
        elif package is None:
            rank = FEATURES.get(path.name, -1)  # neutral: below every feature package
        else:
            rank = RANK[package]
        for module in imports(path):
            top, _, rest = module.partition(".")
            where = path.relative_to(root)
            if top in ("typer", "rich") and rank != 9:
                yield f"{where} imports {module}: typer and rich belong to the CLI's edge"
            if top != "scalectl" or not rest:
                continue
            target = rest.split(".")[0]
            if target in ("commands", "cli", "output") and rank != 9:
                yield f"{where} imports {module}: nothing below the CLI imports it"
            elif target in RANK and target != package and RANK[target] >= rank:
                yield f"{where} imports {module}: against the layering"


def test_imports_follow_the_layers() -> None:
    assert list(problems()) == []


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "x.py").write_text("from scalectl.drill import catalog\nimport rich\n")
    (tmp_path / "files.py").write_text("from scalectl.stack import state\n")
    (tmp_path / "drill").mkdir()
    (tmp_path / "drill" / "y.py").write_text("from scalectl.stack import state\n")
    assert len(list(problems(tmp_path))) == 3
