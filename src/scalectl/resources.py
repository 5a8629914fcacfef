"""Data shipped inside the package (templates, scenarios, checklists), read the same way
from a checkout and from an installed wheel (STYLE.md §4)."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable


def root() -> Traversable:
    return files("scalectl")


def template(name: str) -> Traversable:
    return root().joinpath("templates", *name.split("/"))


def read_template(name: str) -> str:
    return template(name).read_text(encoding="utf-8")
