"""Rendered configs, wherever they come from (the plan, a directory, the running stack),
and the `plan-check` verifier: `scalectl plan --check` through the core, not a subprocess."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import model_validator

from scalectl.checklist.model import VerifierOutcome, failed, passed
from scalectl.checklist.verifiers.base import Context, Params, Verifier
from scalectl.errors import CheckFailed
from scalectl.plan import Prepared

# The labels scalectl.plan.validate gives its checks, for `tools:` filters.
ToolName = Literal[
    "nginx -t",
    "gixy",
    "promtool check rules",
    "promtool test rules",
    "promtool check config",
    "amtool check-config",
    "kubernetes-validate",
    "compose-spec schema",
]


class RenderedParams(Params):
    """Where a verifier of rendered configs gets them: the plan rendered afresh, an existing
    directory, or the running stack's."""

    source: Literal["plan", "stack"] = "plan"
    plan: str | None = None  # default: --plan, else the running stack's plan
    profile: str = "production"
    dir: str | None = None  # an existing `scalectl plan --out` directory, checked as it is

    @model_validator(mode="after")
    def _stack_is_a_source(self) -> RenderedParams:
        if self.source == "stack" and (self.plan or self.dir):
            raise ValueError("source: stack uses the stack's own plan and rendered directory")
        return self


@dataclass(frozen=True)
class Rendered:
    """Rendered configs to check: the directory, where they came from, the prepared plan and what
    it renders now."""

    root: Path  # the directory holding nginx/, prometheus/, kubernetes/, ...
    label: str  # where it came from, for evidence lines
    prepared: Prepared
    files: dict[str, bytes]  # what the plan renders now


@contextmanager
def rendered(params: RenderedParams, ctx: Context) -> Iterator[Rendered]:
    """The configs to check: a fresh render of the plan in a temporary directory, the given
    `dir`, or the stack's `rendered/` (what its nginx and Prometheus run with); with
    --target, `source: stack` is the run's plan rendered afresh."""
    from scalectl.files import write_tree
    from scalectl.plan import prepare, render_files

    label = ""
    if params.source == "stack" and ctx.remote_target() is not None:
        # What runs elsewhere was rendered from the plan the run names (--plan).
        plan, profile = ctx.plan_path(), params.profile
        directory: Path | None = None
        label = " (--target: the plan stands in for the stack's configs)"
    elif params.source == "stack":
        state = ctx.stack()
        plan, profile = Path(state.plan), state.profile
        directory = Path(state.state_dir) / "rendered"
    else:
        plan, profile = ctx.plan_path(params.plan), params.profile
        directory = ctx.path(params.dir) if params.dir else None
    prepared = prepare(plan, profile)
    if not prepared.sizing.feasible:
        raise CheckFailed(
            f"{plan} ({profile}) is infeasible",
            lines=[f"infeasible: {r}" for r in prepared.sizing.infeasible],
        )
    files = render_files(prepared)
    if directory is not None:
        if not directory.is_dir():
            raise CheckFailed(f"{directory}: no such directory of rendered configs")
        yield Rendered(directory, str(directory), prepared, files)
        return
    with tempfile.TemporaryDirectory(prefix="scalectl-checklist-") as tmp:
        write_tree(Path(tmp), files)
        yield Rendered(Path(tmp), f"{plan} ({profile}) rendered afresh{label}", prepared, files)


def k8s_version(rendered_: Rendered, given: str | None) -> str:
    """The Kubernetes version to validate against: `given`, else the plan's."""
    return given or rendered_.prepared.loaded.plan.kubernetes_version


def drift(rendered_: Rendered) -> list[str]:
    """Files of `dir` that differ from what the plan renders now."""
    out = []
    for rel, content in sorted(rendered_.files.items()):
        path = rendered_.root / rel
        if not path.is_file():
            out.append(f"{rel} (missing)")
        elif path.read_bytes() != content:
            out.append(rel)
    return out


def relative(path: str, root: Path) -> str:
    """`path` relative to `root` when it is inside it, else as given."""
    p = Path(path)
    return str(p.relative_to(root)) if p.is_relative_to(root) else path


def first_lines(text: str, limit: int = 3) -> list[str]:
    """The first `limit` non-blank lines of `text`, and how many more there are."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[:limit] + (
        [f"... ({len(lines) - limit} more lines)"] if len(lines) > limit else []
    )


class PlanCheckParams(RenderedParams):
    """Parameters of the `plan-check` verifier: where the configs come from, which tools, and the
    Kubernetes version."""

    tools: list[ToolName] | None = None  # only these validators (default: all that apply)
    k8s_version: str | None = None  # default: the plan's kubernetes_version


def check_plan(params: PlanCheckParams, ctx: Context) -> VerifierOutcome:
    """The `plan-check` item: the rendered configs pass `scalectl plan --check`; with `dir`, the
    directory also matches what the plan renders now. Raises CheckFailed (or another
    ScalectlError), which fails the item, when the plan is missing or infeasible."""
    from scalectl.plan.validate import run_checks

    with rendered(params, ctx) as r:
        changed = drift(r) if params.dir else []
        tools = params.tools
        checks = run_checks(
            r.root,
            k8s_version(r, params.k8s_version),
            ctx.environ,
            select=None if tools is None else (lambda tool, _: tool in tools),
        )
        ok = [c for c in checks if c.status == "ok"]
        bad = [c for c in checks if c.status != "ok"]
        lines = [f"{r.label}: {len(ok)} of {len(checks)} validator checks ok"]
        for c in ok:
            lines.append(f"ok: {c.tool} {relative(c.target, r.root)}")
        for c in bad:
            lines.append(f"{c.status}: {c.tool} {relative(c.target, r.root)}")
            lines.extend(f"  {line}" for line in first_lines(c.detail))
    if changed:
        lines.insert(
            1,
            f"{len(changed)} file(s) differ from what the plan renders: "
            f"{', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}",
        )
    if not checks:
        return failed(*lines, "no validator applies to these configs")
    return passed(*lines) if not bad and not changed else failed(*lines)


PLAN_CHECK = Verifier(
    "plan-check",
    PlanCheckParams,
    check_plan,
    "the rendered configs pass `scalectl plan --check` (nginx -t, gixy, promtool, amtool, "
    "kubernetes-validate, compose schema); with `dir`, that directory also matches the plan",
)
