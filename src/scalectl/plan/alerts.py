"""Symptom alerts' `for` durations and severities (`alerting.alerts`): the plan's overrides,
today's defaults, and what the alert rule templates see.

The error- and latency-budget burn alerts are not here: each is a page and a ticket alert
with windows of its own (`alerting.burn_rate`, scalectl.plan.burnrate), so one `for` and one
severity cannot describe them; naming one here is refused with a pointer there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field

from scalectl.strict import Strict

# Each symptom alert by its name without the service's or worker's prefix: `apiHighErrorRate`
# is rendered as ApiHighErrorRate and configured as HighErrorRate. `Down` is both the service
# and the worker alert.
AlertName = Literal[
    "Down",
    "HighErrorRate",
    "LatencyP95High",
    "LatencyP99High",
    "MemoryNearLimit",
    "EndpointLatencyP95High",
    "QueueDepthHigh",
    "QueueJobTooOld",
    "DeadLettersIncreasing",
]
ALERT_NAMES: tuple[str, ...] = get_args(AlertName)
# slo.rules.yml's multiwindow alerts, refused by name in alerting.alerts.
BURN_ALERTS = ("ErrorBudgetBurn", "LatencyBudgetBurn")

# (for, severity) as the rules had them before they could be set. None as the severity:
# QueueJobTooOld pages for a high-priority queue and files a ticket otherwise.
DEFAULTS: dict[AlertName, tuple[str, str | None]] = {
    "Down": ("5m", "page"),
    "HighErrorRate": ("5m", "page"),
    "LatencyP95High": ("10m", "page"),
    "LatencyP99High": ("10m", "ticket"),
    "MemoryNearLimit": ("15m", "ticket"),
    "EndpointLatencyP95High": ("10m", "ticket"),
    "QueueDepthHigh": ("10m", "ticket"),
    "QueueJobTooOld": ("5m", None),
    "DeadLettersIncreasing": ("0s", "ticket"),
}
assert set(DEFAULTS) == set(ALERT_NAMES)

# The severities the rendered Alertmanager routes by name; any other goes to its default
# receiver, which posts to the ticket webhook.
ROUTED_SEVERITIES = ("page", "ticket")
MAX_FOR_SECONDS = 24 * 3600

# Prometheus's duration grammar narrowed to whole hours, minutes and seconds in that order.
DURATION = re.compile(r"(?:([0-9]{1,5})h)?(?:([0-9]{1,5})m)?(?:([0-9]{1,5})s)?", re.ASCII)
# A Prometheus label value, an Alertmanager matcher and a YAML plain scalar alike.
_SEVERITY = re.compile(r"[a-z][a-z0-9_-]{0,30}", re.ASCII)


def for_seconds(value: str) -> int:
    """A validated `for` duration (`2m`, `1h30m`, `0s`) in seconds."""
    match = DURATION.fullmatch(value)
    assert match and value, value
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _for(value: str) -> str:
    if not value or not DURATION.fullmatch(value):
        raise ValueError(
            f"must be a Prometheus duration of whole hours, minutes and seconds in that order, "
            f"such as 2m, 90s or 1h30m, got '{value}'"
        )
    if for_seconds(value) > MAX_FOR_SECONDS:
        raise ValueError(f"must be at most 24h, got '{value}'")
    return value


def _severity(value: str) -> str:
    if not _SEVERITY.fullmatch(value):
        raise ValueError(
            "must be a lowercase letter, then at most 30 lowercase letters, digits, '_' or "
            f"'-' (such as page or ticket), got '{value}'"
        )
    return value


def _number_as_text(value: object) -> object:
    # `for: 120` is an int in YAML: refuse it as a duration without a unit, not as a non-string.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _not_burn(value: object) -> object:
    if value in BURN_ALERTS:
        raise ValueError(
            "a burn-rate alert is not set here: it is a page and a ticket alert, each with "
            "windows, burn rates and `for` of its own; set them in alerting.burn_rate.page and "
            'alerting.burn_rate.ticket (docs/alerts.md, "Burn-rate alerts")'
        )
    return value


ConfigurableAlert = Annotated[AlertName, BeforeValidator(_not_burn)]
ForDuration = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_for)]
Severity = Annotated[str, AfterValidator(_severity)]


class AlertRule(Strict):
    """`alerting.alerts.<name>`: one symptom alert's `for` and severity; unset keeps the
    default."""

    for_: ForDuration | None = Field(
        None,
        alias="for",
        description="How long the condition must hold before the alert fires: 0s to 24h, "
        "such as 2m or 1h30m; 0s fires on the first evaluation.",
    )
    severity: Severity | None = Field(
        None,
        description="The alert's severity label: page and ticket reach their webhooks; any "
        "other value reaches the ticket webhook through Alertmanager's default route.",
    )


@dataclass(frozen=True)
class AlertSetting:
    """One symptom alert as the rule templates render it."""

    for_: str | None  # Prometheus duration; None renders no `for:` (fires at once)
    for_words: str  # "5 minutes", "1 hour 30 minutes" for annotation texts; "" with no for_
    severity: str | None  # None: the template decides (QueueJobTooOld by queue priority)


def alert_settings(overrides: dict[AlertName, AlertRule]) -> dict[str, AlertSetting]:
    """Every symptom alert's `for` and severity: the plan's overrides over the defaults."""
    out: dict[str, AlertSetting] = {}
    for name, (default_for, default_severity) in DEFAULTS.items():
        rule = overrides.get(name, AlertRule())
        for_ = rule.for_ if rule.for_ is not None else default_for
        seconds = for_seconds(for_)
        out[name] = AlertSetting(
            for_=for_ if seconds else None,
            for_words=_words(seconds),
            severity=rule.severity or default_severity,
        )
    return out


def _words(seconds: int) -> str:
    parts = []
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
    return " ".join(parts)


def warnings(overrides: dict[AlertName, AlertRule]) -> list[str]:
    """One line per severity the rendered Alertmanager does not route by name."""
    return [
        f"alerting.alerts.{name}.severity '{rule.severity}': the rendered Alertmanager routes "
        "only page and ticket by name, so this alert reaches the ticket webhook through the "
        "default route (no paging, and no inhibition by a page)"
        for name, rule in overrides.items()
        if rule.severity is not None and rule.severity not in ROUTED_SEVERITIES
    ]
