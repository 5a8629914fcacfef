"""What a checklist file holds (the YAML schema) and what a run produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from scalectl.duration import format_duration as format_duration
from scalectl.duration import parse_duration

# Re-exported: verifiers take Duration and format_duration from here.
from scalectl.strict import Strict


def _duration(value: Any) -> Any:
    """`500ms`, `90s`, `30m`, `1h30m`, `24h`, `7d`, or a number of seconds -> seconds: the
    one grammar health uses too (scalectl.duration). Zero is allowed here."""
    if isinstance(value, bool):
        return value  # let pydantic reject it
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return parse_duration(value, allow_zero=True)
    return value


# A non-negative number of seconds, written as `24h` and the like in YAML.
Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0)]


ItemId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class ItemSpec(Strict):
    """One line of a checklist: verified by a named kind (`verify`), or asked (`ask`)."""

    id: ItemId = Field(description="Stable identifier: progress and answers are keyed by it.")
    title: str = Field(min_length=1)
    description: str | None = None
    required: bool = Field(True, description="A failing required item fails the checklist.")
    valid_for: Duration | None = Field(
        None,
        description="How long a pass is reused by a later run (default 24h; 0 for checks of "
        "the live stack, which run every time).",
    )
    verify: dict[str, Any] | None = Field(
        None, description="{kind: <verifier>, <parameter>: <value>, ...}"
    )
    ask: str | None = Field(None, min_length=1, description="The question a person answers.")

    @model_validator(mode="after")
    def _one_way(self) -> ItemSpec:
        if (self.verify is None) == (self.ask is None):
            raise ValueError("an item needs exactly one of 'verify' (automatic) or 'ask' (manual)")
        return self

    @property
    def manual(self) -> bool:
        """Whether a person answers the item (`ask`) instead of a verifier."""
        return self.ask is not None

    @property
    def kind(self) -> str:
        """The verifier kind, or manual."""
        return "manual" if self.verify is None else str(self.verify.get("kind", ""))


class ChecklistSpec(Strict):
    """A checklist file as written: `version: 1`, its name, title and items."""

    version: Literal[1]
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")] = Field(
        description="Progress is saved as .scalectl/checklists/<name>.json."
    )
    title: str = Field(min_length=1)
    description: str | None = None
    items: list[ItemSpec] = Field(min_length=1)


class AnswerSpec(Strict):
    """One entry of an --answers file."""

    answer: bool = Field(description="yes or no")
    by: str | None = Field(None, min_length=1)
    note: str | None = None


# --- results -------------------------------------------------------------------------

# skipped: the item could not be checked here (it needs the local stack and --target names a
# deployment elsewhere). It is not a pass: a required item skipped leaves the run incomplete.
Status = Literal["pass", "fail", "skipped"]

NEEDS_LOCAL_STACK = "skipped: needs the local stack"


@dataclass(frozen=True)
class VerifierOutcome:
    """What a verifier found: a verdict and the evidence lines behind it (`skipped`: it did not
    check at all, which never passes)."""

    passed: bool
    evidence: tuple[str, ...]
    skipped: bool = False

    @property
    def status(self) -> Status:
        """pass, fail or skipped."""
        return "skipped" if self.skipped else ("pass" if self.passed else "fail")


def passed(*evidence: str) -> VerifierOutcome:
    """A passing VerifierOutcome with its evidence lines."""
    return VerifierOutcome(True, tuple(evidence))


def failed(*evidence: str) -> VerifierOutcome:
    """A failing VerifierOutcome with its evidence lines (the reasons among them)."""
    return VerifierOutcome(False, tuple(evidence))


def skipped(*evidence: str) -> VerifierOutcome:
    """An item not checked in this run: "skipped: needs the local stack" unless `evidence`
    says otherwise. It counts as not passed."""
    return VerifierOutcome(False, tuple(evidence) or (NEEDS_LOCAL_STACK,), skipped=True)


@dataclass(frozen=True)
class Answer:
    """A person's answer to a manual item: yes or no, who, when, an optional note, and whether it
    came from a prompt or an answers file."""

    answer: bool
    by: str
    at: float  # Unix time
    note: str | None = None
    source: Literal["prompt", "answers file"] = "prompt"

    def to_json(self) -> dict[str, Any]:
        """The answer as progress files and `--json` hold it."""
        return {
            "answer": "yes" if self.answer else "no",
            "by": self.by,
            "at": self.at,
            "note": self.note,
            "source": self.source,
        }


@dataclass(frozen=True)
class ItemResult:
    """How one item ended in a run: pass or fail, its evidence, when it was checked, how long it
    took, and whether the pass was reused from saved progress."""

    id: str
    title: str
    required: bool
    kind: str  # a verifier kind, or "manual"
    status: Status
    evidence: tuple[str, ...]
    checked_at: float  # Unix time of the check (or of the answer)
    duration_s: float
    reused: bool = False  # taken from saved progress, not checked in this run
    answer: Answer | None = None


@dataclass(frozen=True)
class ChecklistResult:
    """A checklist run: every item's result, and where progress was saved."""

    name: str
    title: str
    source: str
    progress_file: str
    items: tuple[ItemResult, ...] = field(default_factory=tuple)

    @property
    def required_failures(self) -> list[ItemResult]:
        """The required items that did not pass."""
        return [i for i in self.items if i.required and i.status != "pass"]

    @property
    def ok(self) -> bool:
        """Whether the checklist is complete: every required item passed."""
        return not self.required_failures
