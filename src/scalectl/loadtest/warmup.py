"""How long a load test's warm-up is: sent, but left out of every gated figure.

Where it comes from (`--warmup`, else the SLO file's or the plan's `warmup`) and what it may
be: the warm-up is the first part of `-t`, as Locust's own `-t` is the whole run (ramp-up
included), so it must leave some of the run to measure (docs/loadtest.md, "Warm-up").
What a warm-up leaves out is decided in scalectl.loadtest.rawjson.
"""

from __future__ import annotations

from scalectl.duration import format_seconds, parse_duration
from scalectl.errors import InputError
from scalectl.loadtest.slo import SloSpec


def resolve_warmup(
    option: str | None, spec: SloSpec | None, where: str, run_seconds: float
) -> float:
    """Seconds of warm-up: `option` (--warmup), else the spec's, else none; `where` names the
    SLO file or plan in messages. Raises InputError for a malformed --warmup or a warm-up
    that leaves nothing of `run_seconds` to measure."""
    if option is not None:
        try:
            warmup, source = parse_duration(option, allow_zero=True), f"--warmup {option}"
        except ValueError as exc:
            raise InputError(f"--warmup {option}: {exc}") from None
    elif spec is not None and spec.warmup_seconds is not None:
        warmup, source = spec.warmup_seconds, f"{where} warmup {spec.warmup}"
    else:
        return 0.0
    if warmup >= run_seconds:
        raise InputError(
            f"{source}: the warm-up must be shorter than --run-time "
            f"({format_seconds(run_seconds)}), which includes it; nothing would be measured"
        )
    return warmup
