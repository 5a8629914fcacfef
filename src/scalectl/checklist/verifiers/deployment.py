"""The live verifiers against a deployment elsewhere (`--target URL`, `--prometheus URL`):
health through the public URL, monitoring and SLOs from the Prometheus HTTP API, the
alerted series on the target's /metrics.

What to look for comes from the plan's rendered Prometheus rules, the one place the
queries are built: slo-live asks Prometheus the very expressions the SLO alerts fire on,
compared with their thresholds, so a plan whose metric names change needs no change here."""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scalectl.checklist.model import VerifierOutcome, failed, passed, skipped
from scalectl.checklist.promql import metric_names, synthetic
from scalectl.checklist.remote import PROFILE, Remote, fetch, instant_query, prometheus_get
from scalectl.checklist.verifiers.alerting import rules_in
from scalectl.checklist.verifiers.base import Context
from scalectl.checklist.verifiers.rendered import RenderedParams, rendered
from scalectl.errors import CheckFailed, InputError

if TYPE_CHECKING:
    from scalectl.checklist.verifiers.health import HealthParams
    from scalectl.checklist.verifiers.metrics import MetricsExposedParams, SloLiveParams
    from scalectl.checklist.verifiers.monitoring import PrometheusParams
    from scalectl.plan.model import Plan

NEEDS_PROMETHEUS = "skipped: needs --prometheus URL (the deployment is read from its HTTP API)"
_POLL = 1.0  # seconds between looks at the targets while some are not up


@dataclass(frozen=True)
class PlanRules:
    """The plan and the rules it renders for Prometheus (every group of every rule file)."""

    plan: Plan
    rules: list[dict[str, Any]]

    def alerts(self) -> list[dict[str, Any]]:
        """The alerting rules."""
        return [r for r in self.rules if "alert" in r]

    def service_of(self, rule: dict[str, Any]) -> str:
        """The service or worker a rule belongs to (its `service` label)."""
        labels = rule.get("labels")
        return str(labels.get("service", "")) if isinstance(labels, dict) else ""


def plan_rules(ctx: Context, plan: str | None = None) -> PlanRules:
    """The plan (an item's `plan`, else --plan) rendered afresh for the profile a deployment
    elsewhere runs, and its Prometheus rules."""
    with rendered(RenderedParams(plan=plan, profile=PROFILE), ctx) as r:
        files = sorted((r.root / "prometheus").glob("*.rules.yml"))
        return PlanRules(r.prepared.loaded.plan, [rule for p in files for rule in rules_in(p)])


# --- health -----------------------------------------------------------------------------


def check_health(params: HealthParams, ctx: Context, remote: Remote) -> VerifierOutcome:
    """`health` through the target: what `scalectl health TARGET` (with --health-config,
    `scalectl health -c FILE TARGET`) checks, warn failing only with strict."""
    from scalectl.health.probe import probe
    from scalectl.health.settings import HealthFlags, resolve

    assert remote.target is not None
    flags = HealthFlags(
        urls=[remote.target],
        config_path=remote.health_config,
        check_timeout=f"{round(params.timeout * 1000)}ms",
        token_env=remote.token_env,
        strict=params.strict,
    )
    try:
        settings = resolve(flags, ctx.environ, interactive=False)
    except InputError as exc:
        return failed(exc.message, *exc.lines)
    summary = probe(settings.checks, settings.options, strict=settings.strict)
    lines = summary.lines()
    return passed(*lines) if summary.healthy else failed(*lines)


# --- prometheus -------------------------------------------------------------------------


def _labels(target: dict[str, Any]) -> dict[str, Any]:
    labels = target.get("labels")
    return labels if isinstance(labels, dict) else {}


def check_prometheus(params: PrometheusParams, ctx: Context, remote: Remote) -> VerifierOutcome:
    """`prometheus` against --prometheus: ready, every job of the plan has targets and all are
    up (waiting up to `wait`), and every alert the plan renders is loaded. Targets of other
    jobs (a shared Prometheus scrapes much else) are counted, not judged."""
    if remote.prometheus is None:
        return skipped(NEEDS_PROMETHEUS)
    base = remote.prometheus
    ready = fetch(
        f"{base}/-/ready",
        remote.prometheus_headers,
        timeout=params.timeout,
        max_bytes=remote.max_bytes,
    )
    if ready.status != 200:
        return failed(f"{base}/-/ready -> {ready.status}: Prometheus is not ready")
    found = plan_rules(ctx)
    jobs = [*found.plan.services, *found.plan.workers]
    lines = [f"Prometheus {base} ready"]
    deadline = time.monotonic() + params.wait
    for _ in range(int(params.wait / _POLL) + 1):
        targets = prometheus_get(remote, "/api/v1/targets?state=active", "activeTargets")
        by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for t in targets:
            by_job[str(_labels(t).get("job", "?"))].append(t)
        pending = [
            j for j in jobs if not by_job[j] or any(t.get("health") != "up" for t in by_job[j])
        ]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(min(_POLL, max(0.0, deadline - time.monotonic())))
    problems: list[str] = []
    counts = []
    for job in jobs:
        up = sum(t.get("health") == "up" for t in by_job[job])
        counts.append(f"{job} {up} of {len(by_job[job])} up")
        if not by_job[job]:
            problems.append(f"job {job}: Prometheus scrapes no target of it")
        for t in by_job[job]:
            if t.get("health") != "up":
                error = f" ({t['lastError']})" if t.get("lastError") else ""
                problems.append(f"{job} {t.get('scrapeUrl')}: {t.get('health')}{error}")
    others = sum(len(v) for k, v in by_job.items() if k not in jobs)
    lines.append(f"targets of the plan's jobs: {', '.join(counts)} ({others} other targets)")
    groups = prometheus_get(remote, "/api/v1/rules?type=alert", "groups")
    loaded = {
        str(r.get("name"))
        for g in groups
        for r in (g.get("rules") if isinstance(g.get("rules"), list) else [])
        if isinstance(r, dict) and r.get("type") == "alerting"
    }
    wanted = {str(r["alert"]) for r in found.alerts()}
    missing = sorted(wanted - loaded)
    lines.append(f"rules: {len(groups)} groups, {len(loaded)} distinct alerts loaded")
    if missing:
        problems.append(f"alerts the plan renders but not loaded: {', '.join(missing)}")
    else:
        lines.append(f"every alert the plan renders is loaded ({len(wanted)})")
    return passed(*lines) if not problems else failed(*lines, *problems)


# --- slo-live ---------------------------------------------------------------------------

# The SLO alerts of alerting.alerts (scalectl.plan.alerts), by the end of their names.
_SLO_ALERTS = ("HighErrorRate", "LatencyP95High", "LatencyP99High")
# A rendered alert expression: the query, then `> threshold` (the rules' one form).
_COMPARISON = re.compile(
    r"(?s)^(?P<query>.*\S)\s*>\s*(?P<limit>[0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?)\s*$"
)
_WINDOW = re.compile(r"\[([0-9]+[smhdwy])\]")


def _shown(alert: str, value: float) -> str:
    return f"{value:.2%}" if "HighErrorRate" in alert else f"{value * 1000:.1f} ms"


def _override(params: SloLiveParams, rule: dict[str, Any], alert: str) -> float | None:
    """The item's own SLO for a service-level alert (p95_ms, p99_ms, error_rate), in the
    rule's unit; None to keep the rule's threshold."""
    labels = rule.get("labels")
    if isinstance(labels, dict) and "route" in labels:
        return None  # a per-endpoint SLO
    if alert.endswith("HighErrorRate"):
        return params.error_rate
    for name, value in (("P95", params.p95_ms), ("P99", params.p99_ms)):
        if alert.endswith(f"Latency{name}High") and value is not None:
            return value / 1000
    return None


def check_slo_live(params: SloLiveParams, ctx: Context, remote: Remote) -> VerifierOutcome:
    """`slo-live` from --prometheus: each SLO alert the plan renders (error rate, p95 and p99
    latency, per-endpoint latency) as its query now, against its threshold (or the item's
    override). No data for a service fails (nothing says its SLO holds); an endpoint without
    requests in the window is noted."""
    if remote.prometheus is None:
        return skipped(NEEDS_PROMETHEUS)
    found = plan_rules(ctx, params.plan)
    lines: list[str] = []
    problems: list[str] = []
    alerts = [
        r for r in found.alerts() if str(r["alert"]).endswith(_SLO_ALERTS) and found.service_of(r)
    ]
    if not alerts:
        return failed("the plan renders no SLO alert (error rate or latency) to query")
    for rule in alerts:
        given = rule.get("labels")
        labels: dict[str, Any] = given if isinstance(given, dict) else {}
        endpoint = " ".join(str(labels[k]) for k in ("method", "route") if k in labels)
        alert = f"{rule['alert']} {endpoint}".strip()
        match = _COMPARISON.match(str(rule.get("expr", "")))
        if match is None:
            problems.append(f"{alert}: its expression does not end in '> threshold'")
            continue
        query = match.group("query")
        limit = _override(params, rule, alert)
        limit = float(match.group("limit")) if limit is None else limit
        window = _WINDOW.search(query)
        over = f" over {window.group(1)}" if window else ""
        samples = instant_query(remote, query)
        values = [v for _, v in samples if not math.isnan(v)]
        if not values and endpoint:
            # An endpoint without requests in the window: nothing to judge, nothing wrong.
            lines.append(f"{alert}: no requests{over}")
            continue
        if not values:
            problems.append(f"{alert}: no data{over} (no traffic, or the series are not scraped)")
            continue
        worst = max(values)
        verdict = "ok" if worst <= limit else "breached"
        lines.append(
            f"{alert}: {_shown(alert, worst)}{over} vs SLO {_shown(alert, limit)}: {verdict}"
        )
        if worst > limit:
            problems.append(f"{alert}: {_shown(alert, worst)} exceeds {_shown(alert, limit)}")
    return passed(*lines) if not problems else failed(*lines, *problems)


# --- metrics-exposed --------------------------------------------------------------------


def check_metrics_exposed(
    params: MetricsExposedParams, ctx: Context, remote: Remote
) -> VerifierOutcome:
    """`metrics-exposed` through the target: each service's /metrics where the rendered nginx
    routes it (below the service's route) has every series its alerts select. Workers are
    not behind the target: their series are left to the prometheus item."""
    from scalectl.exposition import ExpositionError, parse

    assert remote.target is not None
    if params.rules is not None:
        return failed("rules: not with --target (the plan's rules are the deployment's)")
    found = plan_rules(ctx)
    recorded = {str(r["record"]) for r in found.rules if "record" in r}
    lines: list[str] = []
    problems: list[str] = []
    for name, svc in found.plan.services.items():
        wanted = sorted(
            n
            for r in found.rules
            if found.service_of(r) == name
            for n in metric_names(str(r.get("expr", "")))
            if n not in recorded and not synthetic(n) and n not in params.ignore
        )
        wanted = list(dict.fromkeys(wanted))
        url = f"{remote.target}{svc.route.rstrip('/')}/metrics"
        try:
            page = fetch(
                url, remote.target_headers, timeout=params.timeout, max_bytes=remote.max_bytes
            )
            if page.status != 200:
                raise CheckFailed(f"{name}: {url} -> {page.status}")
            names = parse(page.body.decode("utf-8", "replace")).names
        except CheckFailed as exc:
            problems.append(exc.message)
            continue
        except ExpositionError as exc:
            problems.append(f"{name}: {url}: not the Prometheus text format ({exc})")
            continue
        missing = [n for n in wanted if n not in names]
        lines.append(f"{name} {url}: {len(wanted) - len(missing)} of {len(wanted)} series exposed")
        if missing:
            problems.append(f"{name}: missing {', '.join(missing)}")
    if found.plan.workers:
        lines.append(
            f"workers ({', '.join(found.plan.workers)}) are not behind --target: the "
            "prometheus item checks they are scraped"
        )
    return passed(*lines) if not problems else failed(*lines, *problems)
