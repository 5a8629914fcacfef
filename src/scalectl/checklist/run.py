"""Walk a checklist: verify what can be verified, ask a person the rest (or read their
answers), reuse fresh passes from saved progress, and save after every item."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from scalectl.checklist.load import Checklist, Item
from scalectl.checklist.model import (
    Answer,
    AnswerSpec,
    ChecklistResult,
    ItemResult,
    ItemSpec,
    VerifierOutcome,
    failed,
    skipped,
)
from scalectl.checklist.progress import Saved, fingerprint, load_progress, save_progress
from scalectl.checklist.verifiers import Context
from scalectl.checklist.verifiers.base import NeedsLocalStack
from scalectl.errors import ScalectlError

# Asks a person about one manual item (their earlier answer, if any, is given); None when
# they skip it. The command layer provides one when it runs at a terminal.
Ask = Callable[[ItemSpec, Answer | None], Answer | None]


def iso(timestamp: float) -> str:
    """A Unix time as UTC ISO 8601 to the second: 2024-05-01T12:00:00Z."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def answer_evidence(answer: Answer) -> tuple[str, ...]:
    """The evidence lines of an answer: who answered what and when, and the note."""
    word = "yes" if answer.answer else "no"
    via = " (answers file)" if answer.source == "answers file" else ""
    lines = [f"answered {word} by {answer.by} at {iso(answer.at)}{via}"]
    if answer.note:
        lines.append(f"note: {answer.note}")
    return tuple(lines)


def run_checklist(
    checklist: Checklist,
    ctx: Context,
    *,
    progress: Path,
    answers: Mapping[str, AnswerSpec] | None = None,
    ask: Ask | None = None,
    who: str = "unknown",
    recheck: bool = False,
    reset: bool = False,
    on_item: Callable[[ItemResult], None] = lambda _: None,
) -> ChecklistResult:
    """Run every item in order and return the results; progress is saved after each, and a
    fresh saved pass is reused unless `recheck`. Raises InputError when the saved progress
    is unreadable (`reset` starts over)."""
    if reset:
        progress.unlink(missing_ok=True)
    saved = load_progress(progress)
    results = []
    for item in checklist.items:
        spec = item.spec
        mark = fingerprint(item, ctx)
        prior = saved.get(spec.id)
        fresh = (
            prior is not None
            and not recheck
            and prior.result.status == "pass"
            and prior.fingerprint == mark
            and item.valid_for > 0
            and 0 <= ctx.now() - prior.result.checked_at <= item.valid_for
        )
        if spec.manual:
            result = _manual(item, ctx, answers or {}, prior, fresh, ask, who)
        elif fresh and prior is not None:
            result = prior.result
        else:
            result = verify_item(item, ctx)
        results.append(result)
        saved[spec.id] = Saved(result, mark)
        save_progress(progress, checklist, saved)
        on_item(result)
    return ChecklistResult(
        checklist.name, checklist.spec.title, checklist.source, str(progress), tuple(results)
    )


def verify_item(item: Item, ctx: Context) -> ItemResult:
    """Run the verifier of one verified item. Returns its ItemResult; a ScalectlError the
    verifier raises fails the item, its message as evidence."""
    assert item.verifier is not None and item.params is not None
    spec = item.spec
    ctx.progress(f"checking {spec.id} ({spec.kind})")
    checked_at = ctx.now()
    started = time.monotonic()
    try:
        outcome: VerifierOutcome = item.verifier.check(item.params, ctx)
    except NeedsLocalStack as exc:
        outcome = skipped(exc.message)
    except ScalectlError as exc:
        # A verifier's own problem (no stack, a bad plan, a tool that failed) fails the item.
        outcome = failed(exc.message, *exc.lines)
    return ItemResult(
        spec.id,
        spec.title,
        spec.required,
        spec.kind,
        outcome.status,
        outcome.evidence,
        checked_at,
        time.monotonic() - started,
    )


def _manual(
    item: Item,
    ctx: Context,
    answers: Mapping[str, AnswerSpec],
    prior: Saved | None,
    fresh: bool,
    ask: Ask | None,
    who: str,
) -> ItemResult:
    spec = item.spec
    given = answers.get(spec.id)
    if given is not None:
        answer: Answer | None = Answer(
            given.answer, given.by or who, ctx.now(), given.note, "answers file"
        )
    elif fresh and prior is not None:
        return prior.result
    elif ask is not None:
        answer = ask(spec, prior.result.answer if prior else None)
    else:
        return _result(
            spec,
            ctx,
            None,
            "fail",
            ("no answer: needs a person (not at a terminal; give --answers FILE)",),
        )
    if answer is None:
        return _result(spec, ctx, None, "fail", ("skipped: no answer given",))
    return _result(spec, ctx, answer, "pass" if answer.answer else "fail", answer_evidence(answer))


def _result(
    spec: ItemSpec,
    ctx: Context,
    answer: Answer | None,
    status: str,
    evidence: tuple[str, ...],
) -> ItemResult:
    return ItemResult(
        spec.id,
        spec.title,
        spec.required,
        "manual",
        "pass" if status == "pass" else "fail",
        evidence,
        answer.at if answer else ctx.now(),
        0.0,
        answer=answer,
    )
