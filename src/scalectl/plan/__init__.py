"""The plan core: load and validate, size, render, write, check. No typer, no rich."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scalectl.plan.load import LoadedPlan, load_plan
from scalectl.plan.sizing import Sizing, size


@dataclass(frozen=True)
class Prepared:
    loaded: LoadedPlan
    sizing: Sizing


def prepare(path: Path, profile: str) -> Prepared:
    loaded = load_plan(path, profile)
    return Prepared(loaded, size(loaded.plan, profile))


def render_files(prepared: Prepared) -> dict[str, bytes]:
    from scalectl.plan.render import render

    return render(prepared.loaded, prepared.sizing)
