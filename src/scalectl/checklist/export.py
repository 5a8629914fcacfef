"""A checklist run as JSON (`--json`) and as Markdown for a pull request (`--markdown`)."""

from __future__ import annotations

from typing import Any

from scalectl.checklist.model import ChecklistResult, ItemResult
from scalectl.checklist.run import iso


def status_word(item: ItemResult) -> str:
    """An item's status as the terminal and Markdown show it: pass, FAIL, SKIPPED (not checked:
    not a pass either), or fail/skipped (optional), marked (saved) when reused."""
    word = "pass" if item.status == "pass" else item.status.upper()
    if item.status != "pass" and not item.required:
        word = f"{item.status} (optional)"
    return f"{word} (saved)" if item.reused else word


def to_json(result: ChecklistResult) -> dict[str, Any]:
    """The result of a checklist run as `scalectl checklist --json` prints it."""
    return {
        "ok": result.ok,
        "checklist": result.name,
        "title": result.title,
        "source": result.source,
        "progress_file": result.progress_file,
        "passed": sum(i.status == "pass" for i in result.items),
        "failed": sum(i.status == "fail" for i in result.items),
        "skipped": sum(i.status == "skipped" for i in result.items),
        "required_failed": [i.id for i in result.required_failures],
        "items": [
            {
                "id": i.id,
                "title": i.title,
                "required": i.required,
                "kind": i.kind,
                "status": i.status,
                "reused": i.reused,
                "checked_at": iso(i.checked_at),
                "duration_s": round(i.duration_s, 3),
                "evidence": list(i.evidence),
                "answer": None
                if i.answer is None
                else {**i.answer.to_json(), "at": iso(i.answer.at)},
            }
            for i in result.items
        ],
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(result: ChecklistResult) -> str:
    """The result of a checklist run as Markdown for a pull request: a headline, then a table of
    every item with its evidence."""
    total = len(result.items)
    good = sum(i.status == "pass" for i in result.items)
    if result.ok:
        head = f"## ✅ scalectl checklist {result.name}: complete ({good} of {total} items pass)"
    else:
        missing = len(result.required_failures)
        head = (
            f"## ❌ scalectl checklist {result.name}: incomplete "
            f"({missing} required item{'s' if missing != 1 else ''} not passed)"
        )
    lines = [
        head,
        "",
        result.title,
        "",
        "| | item | evidence | checked |",
        "|---|---|---|---|",
    ]
    for i in result.items:
        mark = "✅" if i.status == "pass" else ("❌" if i.required else "⚠️")
        if i.status == "skipped":
            mark = "⏭️" if not i.required else "❌ ⏭️"
        evidence = "<br>".join(_cell(e) for e in i.evidence) or "-"
        when = iso(i.checked_at) + (" (saved)" if i.reused else "")
        lines.append(f"| {mark} | **{_cell(i.title)}** (`{i.id}`) | {evidence} | {when} |")
    lines.append("")
    return "\n".join(lines)
