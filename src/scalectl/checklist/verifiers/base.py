"""What every verifier gets (a Context), gives back (a VerifierOutcome), and declares (its kind
and a pydantic model of its parameters, so a checklist file is validated up front)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from scalectl.checklist.model import NEEDS_LOCAL_STACK, VerifierOutcome
from scalectl.errors import CheckFailed
from scalectl.stack.state import Member, StackState
from scalectl.strict import Strict

if TYPE_CHECKING:
    from scalectl.checklist.remote import Remote


class NeedsLocalStack(CheckFailed):
    """Raised by Context.stack() when --target names a deployment elsewhere: the item is
    skipped (never passed), as the local stack is not what is checked."""

    def __init__(self) -> None:
        super().__init__(NEEDS_LOCAL_STACK)


class Params(Strict):
    """A verifier's parameters: unknown keys are errors, as everywhere in scalectl."""


P = TypeVar("P", bound=Params)


@dataclass(frozen=True)
class Context:
    """The run's environment, passed in rather than read from globals."""

    plan: Path | None = None  # --plan; None: the running stack's plan
    state_dir: Path = Path(".scalectl/stack")
    report_dir: Path = Path("loadtest-report")
    root: Path = field(default_factory=Path.cwd)  # relative paths in parameters start here
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    now: Callable[[], float] = time.time
    progress: Callable[[str], None] = lambda _: None
    remote: Remote | None = None  # --target/--prometheus: the deployment to check instead

    def remote_target(self) -> Remote | None:
        """The Remote when --target names a deployment elsewhere (so the local stack is not
        what is checked), else None."""
        return self.remote if self.remote is not None and self.remote.target else None

    def path(self, text: str) -> Path:
        """`text` as a path: absolute as given, relative from the run's root."""
        path = Path(text)
        return path if path.is_absolute() else self.root / path

    def stack(self) -> StackState:
        """The running stack's state, or CheckFailed (the item fails, naming the fix);
        NeedsLocalStack (the item is skipped) when --target names a deployment elsewhere."""
        from scalectl.stack.state import load

        if self.remote_target() is not None:
            raise NeedsLocalStack()

        state = load(self.state_dir.absolute())
        if state is None:
            raise CheckFailed(
                f"no stack is running in {self.state_dir} (start one: scalectl stack up)"
            )
        return state

    def plan_path(self, given: str | None = None) -> Path:
        """A parameter's plan, else --plan, else the running stack's plan. With none of
        them the item fails and says so: checking some bundled example instead would pass
        for a plan that is not yours."""
        if given:
            return self.path(given)
        if self.plan is not None:
            return self.plan
        if self.remote_target() is not None:
            # The local stack's plan says nothing about a deployment elsewhere.
            raise CheckFailed("no plan to check the deployment against: give --plan PLAN")
        from scalectl.stack.state import load

        state = load(self.state_dir.absolute())
        if state is not None:
            return Path(state.plan)
        raise CheckFailed(
            f"no plan to check: give --plan PLAN (no stack is running in {self.state_dir} "
            "to take its plan from)"
        )


@dataclass(frozen=True)
class Verifier(Generic[P]):
    """A verifier kind: its name in checklist files, its parameters' model, the check, one line
    about it, and whether it checks the live stack."""

    kind: str
    params: type[P]
    check: Callable[[P, Context], VerifierOutcome]
    about: str  # one line for `scalectl checklist list` and docs/checklist.md
    # Checks the live stack: a pass says how it was at that moment, so by default it is
    # never reused by a later run (valid_for 0; docs/checklist.md "Progress and resuming").
    live: bool = False


def require_loopback(url: str) -> str:
    """Checklists send traffic only to this machine (docs/checklist.md, "Safety"), checked
    by scalectl.netguard: every address the host resolves to must be loopback."""
    from scalectl.netguard import url_problem

    problem = url_problem(url)
    if problem:
        raise CheckFailed(f"{url}: {problem}; checklists only probe this machine")
    return url


def app_members(state: StackState) -> list[Member]:
    """The app instances of the running stack. Raises CheckFailed when it has none."""
    members = [m for m in state.members if m.kind == "app" and m.url]
    if not members:
        raise CheckFailed(f"the stack in {state.state_dir} has no app instance")
    return members
