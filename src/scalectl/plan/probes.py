"""The plan's probes: `services.<name>.health` (HTTP paths) and `workers.<name>.health` (a
command or a TCP port, for workers that serve no HTTP), with the timings both take.

Field descriptions here become docs/plan.md and the editor-facing JSON Schema, so they
are written for the person filling in the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from scalectl.plan.fieldtypes import HttpPath, Port
from scalectl.plan.patterns import Arg
from scalectl.strict import Strict

ProbeKind = Literal["liveness", "readiness", "startup"]
PROBE_KINDS: tuple[ProbeKind, ...] = ("liveness", "readiness", "startup")
# (period, timeout, failure threshold) by kind.
Defaults = dict[ProbeKind, tuple[int, int, int]]


@dataclass(frozen=True)
class ProbeTimes:
    """A probe's timings with the defaults filled in; `default` when the plan set none."""

    period_seconds: int
    timeout_seconds: int
    failure_threshold: int
    default: bool


# Services. Startup: up to 5 minutes to boot. Readiness: out of rotation after 10 s of
# failures. Liveness: a restart only after a minute of them.
PROBE_DEFAULTS: Defaults = {
    "liveness": (10, 5, 6),
    "readiness": (5, 2, 2),
    "startup": (5, 2, 60),
}
# Workers, as their metrics probes always were: they take no traffic, so readiness can be
# slower; liveness restarts after 2 minutes of failures.
WORKER_PROBE_DEFAULTS: Defaults = {
    "liveness": (20, 5, 6),
    "readiness": (10, 3, 3),
    "startup": (5, 3, 60),
}


class ProbeTiming(Strict):
    """One probe's timings; an omitted one keeps its default (see `health.timings`)."""

    period_seconds: int | None = Field(
        None, ge=1, le=3600, description="Seconds between checks (periodSeconds)."
    )
    timeout_seconds: int | None = Field(
        None,
        ge=1,
        le=3600,
        description="Seconds one check may take (timeoutSeconds); must be below period_seconds.",
    )
    failure_threshold: int | None = Field(
        None, ge=1, le=100, description="Failed checks in a row before the probe fails."
    )

    def filled(self, defaults: tuple[int, int, int]) -> ProbeTimes:
        """These timings, each unset one taken from `defaults` (period, timeout, failures)."""
        given = (self.period_seconds, self.timeout_seconds, self.failure_threshold)
        period, timeout, failures = (
            default if value is None else value
            for value, default in zip(given, defaults, strict=True)
        )
        return ProbeTimes(period, timeout, failures, (period, timeout, failures) == defaults)


class ProbeTimings(Strict):
    """`services.<name>.health.timings`: per probe, how often it runs, how long a check may
    take and how many failures count. Defaults (period, timeout, failures): liveness 10 s, 5 s,
    6; readiness 5 s, 2 s, 2; startup 5 s, 2 s, 60. Compose's healthcheck takes the readiness
    timings the plan sets (interval, timeout, retries); unset ones stay 10 s, 3 s, 3."""

    liveness: ProbeTiming = Field(
        ProbeTiming(), description="Default: every 10 s, 5 s timeout, restart after 6 failures."
    )
    readiness: ProbeTiming = Field(
        ProbeTiming(),
        description="Default: every 5 s, 2 s timeout, out of rotation after 2 failures. Also "
        "Compose's healthcheck (interval, timeout, retries) for the fields set here; unset ones "
        "stay 10 s, 3 s, 3 there.",
    )
    startup: ProbeTiming = Field(
        ProbeTiming(), description="Default: every 5 s, 2 s timeout, 60 failures (5 minutes)."
    )


class Health(Strict):
    """`services.<name>.health`: the paths of the liveness, readiness and startup probes,
    and their timings."""

    liveness: HttpPath = "/health"
    readiness: HttpPath = "/health/ready"
    startup: HttpPath = "/health"
    timings: ProbeTimings = Field(
        ProbeTimings(), description="Probe periods, timeouts and failure thresholds."
    )

    def times(self, kind: ProbeKind) -> ProbeTimes:
        """The `kind` probe's timings, defaults filled in."""
        given: ProbeTiming = getattr(self.timings, kind)
        return given.filled(PROBE_DEFAULTS[kind])


class WorkerProbeTimings(Strict):
    """`workers.<name>.health.timings`: as a service's `health.timings`, with a worker's
    defaults (period, timeout, failures): liveness 20 s, 5 s, 6; readiness 10 s, 3 s, 3;
    startup 5 s, 3 s, 60. Compose's healthcheck takes the readiness timings the plan sets
    (interval, timeout, retries); unset ones stay 20 s, 5 s, 3 there."""

    liveness: ProbeTiming = Field(
        ProbeTiming(), description="Default: every 20 s, 5 s timeout, restart after 6 failures."
    )
    readiness: ProbeTiming = Field(
        ProbeTiming(),
        description="Default: every 10 s, 3 s timeout, unready after 3 failures. Also Compose's "
        "healthcheck (interval, timeout, retries) for the fields set here.",
    )
    startup: ProbeTiming = Field(
        ProbeTiming(), description="Default: every 5 s, 3 s timeout, 60 failures (5 minutes)."
    )


class WorkerHealth(Strict):
    """`workers.<name>.health`: how a worker's probes check it. A worker that serves no HTTP
    (Celery, RQ, Bull) gives a command (`exec`) or a port (`tcp`); without either, the
    probes request its metrics endpoint, as before. One check serves the startup, readiness
    and liveness probes, each with its own timings."""

    exec: list[Arg] | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="A command run in the container, as argv (exit 0: healthy), e.g. [celery, "
        "-A, proj, inspect, ping, -d, celery@$HOSTNAME] behind sh -c for the variable. "
        "Kubernetes' exec probe and Compose's healthcheck; no shell unless you run one.",
    )
    tcp: Port | None = Field(
        None,
        description="A port in the container that accepts a TCP connection when healthy "
        "(Kubernetes' tcpSocket probe). Compose has no TCP check, so its healthcheck is off.",
    )
    timings: WorkerProbeTimings = Field(
        WorkerProbeTimings(), description="Probe periods, timeouts and failure thresholds."
    )

    @property
    def check(self) -> Literal["exec", "tcp", "metrics"]:
        """What the probes run: the command, the TCP connect or a request for the metrics."""
        if self.exec is not None:
            return "exec"
        if self.tcp is not None:
            return "tcp"
        return "metrics"

    def times(self, kind: ProbeKind) -> ProbeTimes:
        """The `kind` probe's timings, defaults filled in."""
        given: ProbeTiming = getattr(self.timings, kind)
        return given.filled(WORKER_PROBE_DEFAULTS[kind])
