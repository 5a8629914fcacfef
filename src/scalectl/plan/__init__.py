"""The plan core: load and validate, size, render, write, check. No typer, no rich."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scalectl.plan.load import LoadedPlan, load_plan
from scalectl.plan.sizing import Sizing, size


@dataclass(frozen=True)
class Prepared:
    """A plan loaded and validated for one profile, and its sizing."""

    loaded: LoadedPlan
    sizing: Sizing


def prepare(path: Path, profile: str) -> Prepared:
    """Load and validate the plan at `path` for `profile`, and size it. Returns both; raises
    InputError listing every problem of the plan. An infeasible sizing is not an error:
    Sizing.infeasible says why."""
    loaded = load_plan(path, profile)
    return Prepared(loaded, size(loaded.plan, profile))


def render_files(prepared: Prepared) -> dict[str, bytes]:
    """Every config file the prepared plan renders, by relative path (scalectl.plan.render)."""
    from scalectl.plan.render import render

    return render(prepared.loaded, prepared.sizing)
