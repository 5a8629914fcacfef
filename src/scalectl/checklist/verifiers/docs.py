"""`rollback-doc`: a rollback procedure is written down where the team will look."""

from __future__ import annotations

import re

from pydantic import Field

from scalectl.checklist.model import VerifierOutcome, failed, format_duration, passed
from scalectl.checklist.verifiers.base import Context, Params, Verifier


class RollbackDocParams(Params):
    """Parameters of the `rollback-doc` verifier: where the document may be, its fewest lines and
    the words it must mention."""

    # The first that exists counts; relative to the directory scalectl runs in.
    path: str | list[str] = Field(default_factory=lambda: ["docs/rollback.md", "ROLLBACK.md"])
    min_lines: int = Field(5, ge=1)  # non-blank lines: a title alone is not a procedure
    mentions: list[str] = Field(default_factory=list)  # words it must contain (any case)


def check_rollback_doc(params: RollbackDocParams, ctx: Context) -> VerifierOutcome:
    """The `rollback-doc` item: the first of `path` that exists is long enough and mentions every
    word asked for. A missing or unreadable document fails the item."""
    candidates = [params.path] if isinstance(params.path, str) else list(params.path)
    for candidate in candidates:
        path = ctx.path(candidate)
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return failed(f"{candidate}: unreadable ({exc})")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        headings = [ln for ln in lines if re.match(r"^#{1,6}\s", ln)]
        age = ctx.now() - path.stat().st_mtime
        evidence = [
            f"{candidate}: {len(lines)} non-blank lines, {len(headings)} headings, "
            f"modified {format_duration(age)} ago"
        ]
        problems = []
        if len(lines) < params.min_lines:
            problems.append(
                f"{candidate} is too short: {len(lines)} lines, need {params.min_lines}"
            )
        missing = [w for w in params.mentions if w.lower() not in text.lower()]
        if missing:
            problems.append(f"{candidate} never mentions: {', '.join(missing)}")
        return passed(*evidence) if not problems else failed(*evidence, *problems)
    return failed(f"no rollback document: looked for {', '.join(candidates)} in {ctx.root}")


ROLLBACK_DOC = Verifier(
    "rollback-doc",
    RollbackDocParams,
    check_rollback_doc,
    "a rollback document exists (the first of `path` found), with at least min_lines "
    "non-blank lines and the words in `mentions`",
)
