"""Saved progress (`.scalectl/checklists/<name>.json`), so a run resumes where it stopped.

Written atomically after every item (plan.write.write_file): a run killed half-way keeps
what it had checked. A pass is reused while it is fresh (the item's `valid_for`) and the
item and the run's inputs are unchanged (a fingerprint)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalectl.checklist.load import Checklist, Item
from scalectl.checklist.model import Answer, ItemResult, Status
from scalectl.checklist.verifiers import Context
from scalectl.errors import InputError, ScalectlError
from scalectl.files import read_json, write_file

VERSION = 1
DEFAULT_DIR = Path(".scalectl/checklists")


@dataclass(frozen=True)
class Saved:
    """An item's saved result and the fingerprint of what it depended on."""

    result: ItemResult
    fingerprint: str


def progress_file(directory: Path, name: str) -> Path:
    """The progress file of checklist `name` in `directory`."""
    return directory / f"{name}.json"


def fingerprint(item: Item, ctx: Context) -> str:
    """Changes when anything a saved pass depended on changes: the item's definition, and
    for verified items the run's inputs (paths), the plan's content, and for checks of the
    live stack which processes make up the stack (a restarted or replaced member is a
    different stack, even when every setting is the same)."""
    basis: dict[str, Any] = {"item": item.spec.model_dump(mode="json")}
    if not item.spec.manual:
        basis["inputs"] = {
            "plan": str(ctx.plan.absolute()) if ctx.plan else None,
            "state_dir": str(ctx.state_dir.absolute()),
            "report_dir": str(ctx.report_dir.absolute()),
            "root": str(ctx.root.absolute()),
            # A pass against the local stack says nothing of a deployment elsewhere.
            "remote": ctx.remote.describe() if ctx.remote else None,
        }
        basis["plan_content"] = _plan_digest(item, ctx)
    if item.live:
        basis["stack"] = _stack_members(ctx)
    text = json.dumps(basis, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plan_digest(item: Item, ctx: Context) -> str | None:
    """The content of the plan the item would read (its own `plan`, --plan or the stack's)."""
    given = getattr(item.params, "plan", None)
    try:
        path = ctx.plan_path(given if isinstance(given, str) else None)
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except (ScalectlError, OSError):
        return None


def _stack_members(ctx: Context) -> list[list[Any]] | None:
    """Each member of the running stack as (name, pid, start time); None without a stack."""
    from scalectl.stack.state import load

    try:
        state = load(ctx.state_dir.absolute())
    except ScalectlError:
        return None
    if state is None:
        return None
    return sorted([m.name, m.pid, round(m.create_time, 2)] for m in state.members)


def load_progress(path: Path) -> dict[str, Saved]:
    """The saved results in the progress file at `path` by item id; empty when there is none.
    Raises InputError when it is unreadable or not a progress file (--reset starts over)."""
    if not path.exists():
        return {}
    try:
        data = read_json(path)
    except InputError as exc:
        raise InputError(f"unreadable progress: {exc}; start over with --reset") from None
    try:
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')!r}")
        return {key: _saved(key, value) for key, value in data["items"].items()}
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"{path}: not a scalectl checklist progress file ({exc}); start over with --reset"
        ) from None


def _saved(key: str, value: dict[str, Any]) -> Saved:
    answer = value.get("answer")
    result = ItemResult(
        id=key,
        title=str(value["title"]),
        required=bool(value["required"]),
        kind=str(value["kind"]),
        status=_status(value["status"]),
        evidence=tuple(str(e) for e in value["evidence"]),
        checked_at=float(value["checked_at"]),
        duration_s=float(value["duration_s"]),
        reused=True,
        answer=Answer(
            answer=answer["answer"] == "yes",
            by=str(answer["by"]),
            at=float(answer["at"]),
            note=answer.get("note"),
            source="answers file" if answer.get("source") == "answers file" else "prompt",
        )
        if isinstance(answer, dict)
        else None,
    )
    return Saved(result, str(value["fingerprint"]))


def _status(value: object) -> Status:
    if value == "pass":
        return "pass"
    return "skipped" if value == "skipped" else "fail"


def save_progress(path: Path, checklist: Checklist, saved: dict[str, Saved]) -> None:
    """Write every saved result of `checklist` to `path`, atomically."""
    items = {}
    for key, entry in saved.items():
        r = entry.result
        items[key] = {
            "title": r.title,
            "required": r.required,
            "kind": r.kind,
            "status": r.status,
            "evidence": list(r.evidence),
            "checked_at": r.checked_at,
            "duration_s": round(r.duration_s, 3),
            "answer": r.answer.to_json() if r.answer else None,
            "fingerprint": entry.fingerprint,
        }
    payload = {
        "version": VERSION,
        "checklist": checklist.name,
        "source": checklist.source,
        "items": items,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, (json.dumps(payload, indent=2) + "\n").encode())
    except OSError as exc:
        raise InputError(f"{path}: cannot save progress ({exc.strerror or exc})") from None
