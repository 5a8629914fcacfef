"""The SLO burn-rate alerts (`alerting.burn_rate`): a page and a ticket alert, each the OR of
its multiwindow, multi-burn-rate windows (Google SRE workbook, ch. 5; Sloth's AlertWindows).

Unset parts keep the workbook's table scaled to the SLO period, so a plan without the
section renders as before. Cross-field bounds (short < long, long within the period, a
factor the budget can reach) are in `check`; scalectl.plan.burntests derives the promtool
cases from the same windows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from scalectl.plan.alerts import DURATION, ROUTED_SEVERITIES, ForDuration, Severity, for_seconds
from scalectl.strict import Strict

AlertKind = Literal["page", "ticket"]
ALERT_KINDS: tuple[AlertKind, ...] = ("page", "ticket")
MAX_WINDOWS = 6  # per alert; each window adds two recording rules per service and SLO

# (kind, long, short, factor, for) for a 30-day period, in seconds; the defaults.
_WORKBOOK: tuple[tuple[AlertKind, int, int, float, int], ...] = (
    ("page", 3600, 300, 14.4, 120),
    ("page", 6 * 3600, 1800, 6.0, 900),
    ("ticket", 24 * 3600, 2 * 3600, 3.0, 3600),
    ("ticket", 3 * 24 * 3600, 6 * 3600, 1.0, 3 * 3600),
)

# alerts.py's duration grammar with whole days in front: Sloth's windows are written 1d, 3d.
_WINDOW = re.compile(r"(?:([0-9]{1,3})d)?" + DURATION.pattern, re.ASCII)
MIN_WINDOW_SECONDS = 60


def prom_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration: 3600 -> "1h", 5400 -> "1h30m"."""
    total = max(1, round(seconds))
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out


def window_seconds(value: str) -> int:
    """A validated window (`5m`, `1h30m`, `3d`) in seconds."""
    match = _WINDOW.fullmatch(value)
    assert match and value, value
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def _window(value: str) -> str:
    if not value or not _WINDOW.fullmatch(value):
        raise ValueError(
            "must be a Prometheus duration of whole days, hours, minutes and seconds in that "
            f"order, such as 5m, 6h or 3d, got '{value}'"
        )
    if window_seconds(value) < MIN_WINDOW_SECONDS:
        raise ValueError(
            f"must be at least 1m (rate() needs two scrapes in the window), got '{value}'"
        )
    return value


def _number_as_text(value: object) -> object:
    # `long: 60` is an int in YAML: refuse it as a duration without a unit, not as a non-string.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


WindowDuration = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_window)]


class BurnWindowSpec(Strict):
    """`alerting.burn_rate.<page|ticket>.windows[]`: one window pair and its burn rate; the
    alert fires while both windows burn faster than it."""

    long: WindowDuration = Field(
        description="The long window, such as 1h or 3d: at most slo.availability.period_days."
    )
    short: WindowDuration = Field(
        description="The short window, such as 5m, shorter than long: it stops the alert soon "
        "after the burn stops (the workbook uses long / 12)."
    )
    factor: float | None = Field(
        None,
        gt=0,
        description="The burn rate: how many times faster than 'exactly on budget' (14.4 for "
        "a 1h window of a 30-day SLO). Give this or budget_percent.",
    )
    budget_percent: float | None = Field(
        None,
        gt=0,
        le=100,
        description="Sloth's errorBudgetPercent: the share of the period's budget the long "
        "window may spend, e.g. 2 (% in 1h). factor = budget_percent / 100 × period / long.",
    )

    @model_validator(mode="after")
    def _one_rate(self) -> BurnWindowSpec:
        if (self.factor is None) == (self.budget_percent is None):
            raise ValueError("give factor or budget_percent (exactly one)")
        return self


class BurnAlertSpec(Strict):
    """`alerting.burn_rate.page` or `.ticket`: one burn-rate alert's severity label, `for`,
    windows, or `disable`; what is unset keeps the workbook's values."""

    severity: Severity | None = Field(
        None,
        description="The severity label; default: page or ticket, the key. Any value other "
        "than page and ticket reaches the ticket webhook through Alertmanager's default route.",
    )
    for_: ForDuration | None = Field(
        None,
        alias="for",
        description="How long a window pair must burn before the alert fires, 0s to 24h; "
        "default: 2m (page) or 1h (ticket), scaled to the SLO period.",
    )
    disable: bool = Field(False, description="true renders no such alert (Sloth's disable).")
    windows: list[BurnWindowSpec] | None = Field(
        None,
        min_length=1,
        max_length=MAX_WINDOWS,
        description="1 to 6 window pairs, ORed; default: the workbook's two (page: 1h and 5m "
        "at 14.4, 6h and 30m at 6; ticket: 1d and 2h at 3, 3d and 6h at 1), scaled to the "
        "SLO period.",
    )


class BurnRate(Strict):
    """`alerting.burn_rate`: the ErrorBudgetBurn and LatencyBudgetBurn alerts, a page and a
    ticket alert each with windows of its own."""

    page: BurnAlertSpec = BurnAlertSpec()
    ticket: BurnAlertSpec = BurnAlertSpec()

    def alert(self, kind: AlertKind) -> BurnAlertSpec:
        """The page or ticket alert's settings."""
        return self.page if kind == "page" else self.ticket


@dataclass(frozen=True)
class BurnWindow:
    """One window pair of a burn-rate alert as templates render it."""

    alert: AlertKind  # which alert ORs it: page or ticket
    severity: str  # that alert's severity label
    long: str  # Prometheus duration, e.g. "1h"
    short: str
    factor: float  # burn rate: how many times faster than "exactly on budget"
    long_seconds: int
    short_seconds: int


@dataclass(frozen=True)
class BurnAlert:
    """A burn-rate alert (the same for errors and latency): its windows, ORed, and `for`."""

    kind: AlertKind
    severity: str
    for_: str | None  # None renders no `for:` (fires on the first evaluation)
    for_seconds: int
    windows: list[BurnWindow]


def _scaled(seconds: float, scale: float) -> int:
    # Round to whole minutes so recording rule names stay readable.
    return max(60, round(seconds * scale / 60) * 60)


def factor_of(spec: BurnWindowSpec, period_days: int) -> float:
    """The window's burn rate: `factor`, or Sloth's budget_percent over the period."""
    if spec.factor is not None:
        return spec.factor
    assert spec.budget_percent is not None
    factor = spec.budget_percent / 100 * period_days * 86400 / window_seconds(spec.long)
    return float(f"{factor:.10g}")  # 2% of 30 days in 1h is 14.4, not 14.399999999999999


def burn_alerts(spec: BurnRate, period_days: int) -> list[BurnAlert]:
    """The enabled burn-rate alerts, page first: the plan's settings over the workbook's
    table scaled to an SLO period of `period_days` (its factors stay)."""
    scale = period_days / 30
    out = []
    for kind in ALERT_KINDS:
        given = spec.alert(kind)
        if given.disable:
            continue
        severity = given.severity or kind
        rows = [row for row in _WORKBOOK if row[0] == kind]
        if given.windows is None:
            windows = [
                _window_view(kind, severity, _scaled(long, scale), _scaled(short, scale), factor)
                for _, long, short, factor, _ in rows
            ]
        else:
            windows = [
                _window_view(
                    kind,
                    severity,
                    window_seconds(w.long),
                    window_seconds(w.short),
                    factor_of(w, period_days),
                )
                for w in given.windows
            ]
        if given.for_ is None:
            for_ = prom_duration(min(_scaled(row[4], scale) for row in rows))
        else:
            for_ = given.for_
        seconds = for_seconds(for_) if given.for_ is not None else window_seconds(for_)
        out.append(BurnAlert(kind, severity, for_ if seconds else None, seconds, windows))
    return out


def _window_view(
    kind: AlertKind, severity: str, long: int, short: int, factor: float
) -> BurnWindow:
    return BurnWindow(
        alert=kind,
        severity=severity,
        long=prom_duration(long),
        short=prom_duration(short),
        factor=factor,
        long_seconds=long,
        short_seconds=short,
    )


PathMsg = tuple[tuple[str | int, ...], str]
_BASE: tuple[str | int, ...] = ("alerting", "burn_rate")


def check(spec: BurnRate, period_days: int, budgets: dict[str, float]) -> Iterator[PathMsg]:
    """Problems of `alerting.burn_rate` a schema cannot see: the windows against each other,
    the SLO period and `budgets` (the objective's name -> 1 - its target)."""
    if spec.page.disable and spec.ticket.disable:
        yield (
            (*_BASE, "ticket", "disable"),
            "page and ticket are both disabled: keep one, or the SLO has no burn-rate alert "
            "(drop or route it in Alertmanager instead)",
        )
    if (
        not spec.page.disable
        and not spec.ticket.disable
        and (spec.page.severity or "page") == (spec.ticket.severity or "ticket")
    ):
        # At the one the plan sets (both: the ticket's).
        kind = "ticket" if spec.ticket.severity is not None else "page"
        other = "page" if kind == "ticket" else "ticket"
        yield (
            (*_BASE, kind, "severity"),
            f"must differ from {other}'s severity: the page and the ticket alert share a name, "
            "so one label value would make them one alert and the page could not inhibit the "
            "ticket",
        )
    period = period_days * 86400
    for kind in ALERT_KINDS:
        for i, window in enumerate(spec.alert(kind).windows or []):
            path = (*_BASE, kind, "windows", i)
            long, short = window_seconds(window.long), window_seconds(window.short)
            if short >= long:
                yield (
                    (*path, "short"),
                    f"must be shorter than long ({window.short} >= {window.long})",
                )
            if long > period:
                yield (
                    (*path, "long"),
                    f"must be at most the SLO period, slo.availability.period_days "
                    f"({window.long} > {period_days}d)",
                )
                continue
            factor = factor_of(window, period_days)
            for name, budget in budgets.items():
                if factor * budget < 1:
                    continue
                if window.factor is not None:
                    field, limit = "factor", f"below {1 / budget:.4g}"
                else:
                    share = 100 * long / (period * budget)
                    field, limit = "budget_percent", f"below {share:.4g} for this window"
                yield (
                    (*path, field),
                    f"burn rate {factor:g} × the {name} budget {budget:g} is "
                    f"{factor * budget:.4g}: the alert could never fire, since at most 100% of "
                    f"requests can spend the budget; keep it {limit}",
                )
                break


def warnings(spec: BurnRate) -> list[str]:
    """One line per severity the rendered Alertmanager does not route by name."""
    return [
        f"alerting.burn_rate.{kind}.severity '{given.severity}': the rendered Alertmanager "
        "routes only page and ticket by name, so this alert reaches the ticket webhook "
        "through the default route (no paging, and no inhibition by a page)"
        for kind in ALERT_KINDS
        if (given := spec.alert(kind)).severity is not None
        and not given.disable
        and given.severity not in ROUTED_SEVERITIES
    ]
