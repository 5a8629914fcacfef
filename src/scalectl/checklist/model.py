"""What a checklist file holds (the YAML schema) and what a run produces."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> Any:
    """`90s`, `30m`, `24h`, `7d`, `2w`, or a number of seconds -> seconds (float)."""
    if isinstance(value, bool):
        return value  # let pydantic reject it
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"'{value}' is not a duration such as 90s, 30m, 24h or 7d")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    return value


# A non-negative number of seconds, written as `24h` and the like in YAML.
Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


def format_duration(seconds: float) -> str:
    """A short human form: 4.5s, 12m, 5h, 3.5d."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or unit == "s":
            value = seconds / size
            text = f"{value:.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")
            return text + unit
    raise AssertionError("unreachable")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ItemId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class ItemSpec(Strict):
    """One line of a checklist: verified by a named kind (`verify`), or asked (`ask`)."""

    id: ItemId = Field(description="Stable identifier: progress and answers are keyed by it.")
    title: str = Field(min_length=1)
    description: str | None = None
    required: bool = Field(True, description="A failing required item fails the checklist.")
    valid_for: Duration = Field(
        86400.0, description="How long a pass is trusted when a run resumes (default 24h)."
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
        return self.ask is not None

    @property
    def kind(self) -> str:
        return "manual" if self.verify is None else str(self.verify.get("kind", ""))


class ChecklistSpec(Strict):
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

Status = Literal["pass", "fail"]


@dataclass(frozen=True)
class Outcome:
    """What a verifier found: a verdict and the evidence lines behind it."""

    passed: bool
    evidence: tuple[str, ...]


def passed(*evidence: str) -> Outcome:
    return Outcome(True, tuple(evidence))


def failed(*evidence: str) -> Outcome:
    return Outcome(False, tuple(evidence))


@dataclass(frozen=True)
class Answer:
    answer: bool
    by: str
    at: float  # Unix time
    note: str | None = None
    source: Literal["prompt", "answers file"] = "prompt"

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": "yes" if self.answer else "no",
            "by": self.by,
            "at": self.at,
            "note": self.note,
            "source": self.source,
        }


@dataclass(frozen=True)
class ItemResult:
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
    name: str
    title: str
    source: str
    progress_file: str
    items: tuple[ItemResult, ...] = field(default_factory=tuple)

    @property
    def required_failures(self) -> list[ItemResult]:
        return [i for i in self.items if i.required and i.status != "pass"]

    @property
    def ok(self) -> bool:
        return not self.required_failures
