"""Putting the stack back: every member a drill acted on runs again afterwards, as `stack
up` started it, also when the drill failed half-way or was interrupted."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from scalectl.drill import faults
from scalectl.drill.engine import DrillContext

# The fault thread and the restore (main thread) may both restart members: one at a time,
# so a member is never started twice and no state.json write is lost.
RESTART_LOCK = threading.RLock()


def restart(
    ctx: DrillContext,
    name: str,
    drain: bool = True,
    overrides: Mapping[str, str] | None = None,
) -> None:
    """Stop the member `name` (gracefully, if alive) and start it as `stack up` did, one
    restart at a time (RESTART_LOCK), with `overrides` replacing variables of its
    environment. `drain=False` skips taking an app instance out of nginx first. Raises what
    scalectl.stack.run.restart_member raises (InputError, CheckFailed when it does not
    become healthy)."""
    from scalectl.stack.run import restart_member

    with RESTART_LOCK:
        restart_member(
            ctx.state_dir,
            name,
            environ=ctx.environ,
            overrides=overrides,
            progress=ctx.timeline.note,
            drain=drain,
        )


def start_again(ctx: DrillContext, name: str) -> None:
    """Start the member `name` again if this drill acted on it (ctx.touched) and it no
    longer runs; otherwise do nothing. Raises as restart does."""
    from scalectl.stack.run import restart_member

    with RESTART_LOCK:
        if name not in ctx.touched or faults.alive(ctx, name):
            return
        ctx.timeline.note(f"restarting {name}")
        restart_member(ctx.state_dir, name, environ=ctx.environ, progress=ctx.timeline.note)
        ctx.timeline.note(f"{name} healthy again")


def restore_touched(ctx: DrillContext) -> None:
    """The restore of every drill: start again whatever it stopped or killed (start_again,
    for each member in ctx.touched). Idempotent. Raises as restart does."""
    for name in sorted(ctx.touched):
        start_again(ctx, name)
