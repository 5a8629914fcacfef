"""Deployment checklists that verify themselves: the core (no typer, no rich).

load.py reads a checklist (shipped: pre, deploy, post; or a user's file), verifiers/ hold
the named kinds an item can use, run.py walks the items, progress.py saves and resumes,
export.py writes JSON and Markdown. docs/checklist.md describes the format."""

from __future__ import annotations

from scalectl.checklist.load import SHIPPED, Checklist, Item, load_answers, load_checklist
from scalectl.checklist.run import Ask, run_checklist

__all__ = [
    "SHIPPED",
    "Ask",
    "Checklist",
    "Item",
    "load_answers",
    "load_checklist",
    "run_checklist",
]
