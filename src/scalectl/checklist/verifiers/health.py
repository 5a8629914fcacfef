"""`health`: every health endpoint of the running stack passes (`scalectl health`'s probes:
each app instance directly, the balancer, the data stores behind them)."""

from __future__ import annotations

from pydantic import Field

from scalectl.checklist.model import Duration, VerifierOutcome, failed, passed
from scalectl.checklist.verifiers.base import Context, Params, Verifier
from scalectl.errors import InputError


class HealthParams(Params):
    """Parameters of the `health` verifier: whether warn fails, and the time limit per probe."""

    strict: bool = False  # warn counts as a failure
    timeout: Duration = Field(5.0, gt=0, le=120)  # seconds per probe


def check_health(params: HealthParams, ctx: Context) -> VerifierOutcome:
    """The `health` item: `scalectl health`'s default checks against the running stack, or
    with --target through the deployment's URL. Raises CheckFailed (or another
    ScalectlError), which fails the item, when no stack runs."""
    from scalectl.health import probe_stack

    remote = ctx.remote_target()
    if remote is not None:
        from scalectl.checklist.verifiers import deployment

        return deployment.check_health(params, ctx, remote)
    try:
        summary = probe_stack(ctx.state_dir, timeout=params.timeout, strict=params.strict)
    except InputError as exc:
        return failed(exc.message, *exc.lines)
    lines = summary.lines()
    return passed(*lines) if summary.healthy else failed(*lines)


HEALTH = Verifier(
    "health",
    HealthParams,
    check_health,
    "`scalectl health` against the running stack: every instance directly and through the "
    "balancer, with each health+json component (warn fails only with strict); with --target, "
    "`scalectl health TARGET` (or --health-config's endpoints)",
    live=True,
)
