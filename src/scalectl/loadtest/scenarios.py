"""The locustfiles a run can name: the shipped scenarios, listed without importing them, or
a path to the user's own."""

from __future__ import annotations

import ast
from pathlib import Path

from scalectl import resources
from scalectl.errors import InputError

# Modules the scenarios import, not scenarios themselves.
_HELPERS = ("common.py", "shapes.py")


def resolve_locustfile(name: str) -> Path:
    """The locustfile `name` means: a path to one, or the name of a shipped scenario.
    Raises InputError when it is neither."""
    path = Path(name)
    if path.suffix == ".py" or path.exists():
        if not path.is_file():
            raise InputError(f"{name}: no such locustfile")
        return path.resolve()
    candidate = resources.data_dir("scenarios").joinpath(f"{name}.py")
    if candidate.is_file() and candidate.name not in _HELPERS:
        return Path(str(candidate))
    listed = ", ".join(scenarios())
    raise InputError(f"no scenario or locustfile named '{name}' (scenarios: {listed})")


def scenarios() -> dict[str, str]:
    """The shipped scenarios by name, each with its docstring's first paragraph (read with
    ast: importing a locustfile would import locust into this process)."""
    found: dict[str, str] = {}
    for entry in sorted(resources.data_dir("scenarios").iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".py") or entry.name in _HELPERS:
            continue
        doc = ast.get_docstring(ast.parse(entry.read_text(encoding="utf-8"))) or ""
        found[entry.name.removesuffix(".py")] = " ".join(doc.split("\n\n")[0].split())
    return found
