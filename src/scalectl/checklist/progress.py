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
from scalectl.checklist.model import Answer, ItemResult
from scalectl.checklist.verifiers import Context
from scalectl.errors import InputError
from scalectl.plan.write import write_file

VERSION = 1
DEFAULT_DIR = Path(".scalectl/checklists")


@dataclass(frozen=True)
class Saved:
    result: ItemResult
    fingerprint: str


def progress_file(directory: Path, name: str) -> Path:
    return directory / f"{name}.json"


def fingerprint(item: Item, ctx: Context) -> str:
    """Changes when the item's definition changes, or (for verified items) the inputs it
    reads: the plan, the stack and the report directory."""
    basis: dict[str, Any] = {"item": item.spec.model_dump(mode="json")}
    if not item.spec.manual:
        basis["inputs"] = {
            "plan": str(ctx.plan.absolute()) if ctx.plan else None,
            "state_dir": str(ctx.state_dir.absolute()),
            "report_dir": str(ctx.report_dir.absolute()),
            "root": str(ctx.root.absolute()),
        }
    text = json.dumps(basis, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_progress(path: Path) -> dict[str, Saved]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable progress ({exc}); start over with --reset") from None
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
        status="pass" if value["status"] == "pass" else "fail",
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


def save_progress(path: Path, checklist: Checklist, saved: dict[str, Saved]) -> None:
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
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, (json.dumps(payload, indent=2) + "\n").encode())
