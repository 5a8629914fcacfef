"""The plan's objectives (`slo`) that load tests gate on and alert rules watch, and where
those alerts go (`alerting`).

Field descriptions here become docs/plan.md and the editor-facing JSON Schema, so they
are written for the person filling in the plan.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from scalectl.plan.alerts import AlertRule, ConfigurableAlert
from scalectl.plan.burnrate import BurnRate
from scalectl.plan.fieldtypes import Fraction, Positive
from scalectl.plan.patterns import EndpointKey, Url
from scalectl.strict import Strict


def _warmup(value: str) -> str:
    from scalectl.duration import parse_duration

    parse_duration(value, allow_zero=True)  # its ValueError names the expected forms
    return value


def _number_as_text(value: object) -> object:
    # `warmup: 10` in YAML is an int: the duration grammar reads a bare number as seconds.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


# A load test's warm-up, in the duration grammar of `scalectl loadtest -t`: 10s, 1m, 90.
Warmup = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_warmup)]


class Availability(Strict):
    """`slo.availability`: the fraction of requests that succeed over a period (for alerting)."""

    target: Fraction = Field(description="Fraction of requests that succeed, e.g. 0.999.")
    period_days: int = Field(30, ge=1, le=366)


class Latency(Strict):
    """Latency objectives in milliseconds: any of p50, p90, p95, p99 and max."""

    p50_ms: Positive | None = None
    p90_ms: Positive | None = None
    p95_ms: Positive | None = None
    p99_ms: Positive | None = None
    max_ms: Positive | None = None


class LatencyObjective(Strict):
    """`slo.latency_objective`: a latency SLO with an error budget, as Pyrra writes one: the
    fraction of requests answered within a threshold over the availability period."""

    threshold_ms: Positive = Field(
        description="A request slower than this spends the latency budget. It must be a bound "
        "of the latency histogram's buckets (sli.buckets, when given, is checked)."
    )
    target: Fraction = Field(
        description="Fraction of requests that must be faster, e.g. 0.95 for '95% under "
        "threshold_ms'."
    )


class EndpointSlo(Strict):
    """`slo.endpoints.<request>`: objectives of one endpoint that override the global ones."""

    latency: Latency | None = None
    error_rate: float | None = Field(None, ge=0, lt=1)
    min_throughput_rps: Positive | None = None


class Slo(Strict):
    """`slo`: availability, latency, error rate and throughput objectives, per endpoint overrides
    and the load-test warm-up."""

    availability: Availability
    latency: Latency = Latency(p95_ms=300, p99_ms=1000)
    error_rate: float = Field(0.01, ge=0, lt=1, description="Largest acceptable failed fraction.")
    latency_objective: LatencyObjective | None = Field(
        None,
        description="A latency SLO such as 95% of requests under 300 ms, alerted on with "
        "multiwindow burn rates over availability.period_days like the error budget.",
    )
    min_throughput_rps: Positive | None = None
    endpoints: dict[EndpointKey, EndpointSlo] = Field(
        default_factory=dict,
        description="Overrides per endpoint, keyed by request name such as 'GET /api/stats'.",
    )
    warmup: Warmup | None = Field(
        None,
        description="Load-test warm-up such as 10s: the first seconds of `scalectl loadtest "
        "--plan` send load but are left out of the SLOs; part of -t (`--warmup` overrides).",
    )


# --- alerting ---------------------------------------------------------------------------


class Alerting(Strict):
    """`alerting`: where Alertmanager sends pages and tickets, where runbooks live, the
    symptom alerts' `for` and severity, and the burn-rate alerts' windows."""

    page_webhook_url: Url = "http://127.0.0.1:9095/page"
    ticket_webhook_url: Url = "http://127.0.0.1:9095/ticket"
    runbook_base_url: Url = "https://runbooks.example.com/scalectl"
    alerts: dict[ConfigurableAlert, AlertRule] = Field(
        default_factory=dict,
        description="`for` and severity per symptom alert, keyed by its name without the "
        "service prefix: Down (services and workers), HighErrorRate, LatencyP95High, "
        "LatencyP99High, MemoryNearLimit, EndpointLatencyP95High, QueueDepthHigh, "
        "QueueJobTooOld, DeadLettersIncreasing. Unset: docs/alerts.md's defaults. The burn-rate "
        "alerts (ErrorBudgetBurn, LatencyBudgetBurn) are set in burn_rate.",
    )
    burn_rate: BurnRate = Field(
        BurnRate(),
        description="The SLO burn-rate alerts (ErrorBudgetBurn and LatencyBudgetBurn): the "
        "page and the ticket alert's windows, burn rates, `for` and severity, or disable. "
        "Unset: the SRE workbook's windows scaled to slo.availability.period_days.",
    )
