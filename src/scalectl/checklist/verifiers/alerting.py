"""`alert-rules`: the Prometheus alerting and recording rules exist and pass promtool
(`check rules` on each file, `test rules` on the rendered unit tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scalectl.checklist.model import VerifierOutcome, failed, passed
from scalectl.checklist.verifiers.base import Context, Verifier
from scalectl.checklist.verifiers.rendered import (
    RenderedParams,
    first_lines,
    k8s_version,
    relative,
    rendered,
)


def rules_in(path: Path) -> list[dict[str, Any]]:
    """The rules of a Prometheus rule file; [] when it does not parse (promtool says why)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return []
    if not isinstance(data, dict):
        return []
    out: list[dict[str, Any]] = []
    for group in data.get("groups") or []:
        if isinstance(group, dict):
            out.extend(r for r in group.get("rules") or [] if isinstance(r, dict))
    return out


class AlertRulesParams(RenderedParams):
    """Parameters of the `alert-rules` verifier: where the configs come from, and the fewest
    alert rules."""

    min_alerts: int = 1


def check_alert_rules(params: AlertRulesParams, ctx: Context) -> VerifierOutcome:
    """The `alert-rules` item: the rendered Prometheus rules exist and pass `promtool check
    rules` and `promtool test rules`. Raises CheckFailed (or another ScalectlError), which
    fails the item, when the plan is missing or infeasible."""
    from scalectl.plan.validate import run_checks

    with rendered(params, ctx) as r:
        files = sorted((r.root / "prometheus").glob("*.rules.yml"))
        if not files:
            return failed(f"{r.label}: no prometheus/*.rules.yml")
        lines = []
        alerts = 0
        for path in files:
            rules = rules_in(path)
            count = sum("alert" in rule for rule in rules)
            alerts += count
            lines.append(
                f"{relative(str(path), r.root)}: {count} alerts, "
                f"{sum('record' in rule for rule in rules)} recording rules"
            )
        checks = run_checks(
            r.root,
            k8s_version(r, None),
            ctx.environ,
            # The rule files only: prometheus-adapter's queries are checked by promtool too.
            select=lambda tool, path: (
                tool in ("promtool check rules", "promtool test rules")
                and path.parent.name == "prometheus"
            ),
        )
        problems: list[str] = []
        for c in checks:
            lines.append(f"{c.tool} {relative(c.target, r.root)}: {c.status}")
            if c.status != "ok":
                problems.extend(f"  {line}" for line in first_lines(c.detail, 5))
        if not any(c.tool == "promtool test rules" for c in checks):
            lines.append("no prometheus/rules.test.yml: the rules have no unit tests")
        if alerts < params.min_alerts:
            problems.append(f"{alerts} alerting rules, at least {params.min_alerts} expected")
        if any(c.status != "ok" for c in checks):
            problems.append("the rules do not pass promtool")
    return passed(*lines) if not problems else failed(*lines, *problems)


ALERT_RULES = Verifier(
    "alert-rules",
    AlertRulesParams,
    check_alert_rules,
    "Prometheus alert and recording rules exist (prometheus/*.rules.yml) and pass "
    "`promtool check rules` and `promtool test rules`",
)
