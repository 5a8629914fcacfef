"""What the running app exposes on `/metrics`: `metrics-exposed` (every series the alert
rules select is there) and `slo-live` (error rate and latency within the plan's SLOs)."""

from __future__ import annotations

import fnmatch
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from scalectl.checklist.model import Duration, VerifierOutcome, failed, format_duration, passed
from scalectl.checklist.promql import metric_names, quantile, synthetic
from scalectl.checklist.verifiers.alerting import rules_in
from scalectl.checklist.verifiers.base import (
    Context,
    Params,
    Verifier,
    app_members,
    require_loopback,
)
from scalectl.errors import CheckFailed
from scalectl.exposition import Exposition, ExpositionError, parse
from scalectl.netguard import loopback_client
from scalectl.plan.sli import DEFAULT_ERROR_STATUS, Sli
from scalectl.stack.state import Member

if TYPE_CHECKING:
    import httpx


def scrape(http: httpx.Client, member: Member) -> Exposition:
    """One instance's /metrics (a worker's metrics URL is its health URL)."""
    import httpx

    url = f"{member.url}/metrics" if member.kind == "app" else str(member.health_url)
    require_loopback(url)
    try:
        response = http.get(url)
    except httpx.HTTPError as exc:
        raise CheckFailed(f"{member.name}: {url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise CheckFailed(f"{member.name}: {url} -> {response.status_code}")
    try:
        return parse(response.text)
    except ExpositionError as exc:
        raise CheckFailed(f"{member.name}: {url}: not the Prometheus text format ({exc})") from None


class MetricsExposedParams(Params):
    """Parameters of the `metrics-exposed` verifier: the rule files, names to ignore, and the
    scrape time limit."""

    rules: list[str] | None = None  # rule files; default: the stack's rendered *.rules.yml
    ignore: list[str] = Field(default_factory=list)  # names not to look for
    timeout: Duration = Field(5.0, gt=0, le=60)


def check_metrics_exposed(params: MetricsExposedParams, ctx: Context) -> VerifierOutcome:
    """The `metrics-exposed` item: every series the alert rules select is on each app instance's
    /metrics (a worker-only series on a worker's). Raises CheckFailed (or another
    ScalectlError), which fails the item, when no stack runs."""
    remote = ctx.remote_target()
    if remote is not None:
        from scalectl.checklist.verifiers import deployment

        return deployment.check_metrics_exposed(params, ctx, remote)
    state = ctx.stack()
    if params.rules is not None:
        files = [ctx.path(p) for p in params.rules]
    else:
        files = sorted((Path(state.state_dir) / "rendered" / "prometheus").glob("*.rules.yml"))
    if not files:
        return failed("no Prometheus rule files to read metric names from")
    used: dict[str, set[str]] = defaultdict(set)  # name -> rules using it
    recorded: set[str] = set()
    for path in files:
        if not path.is_file():
            return failed(f"{path}: no such rule file")
        for rule in rules_in(path):
            if "record" in rule:
                recorded.add(str(rule["record"]))
            for name in metric_names(str(rule.get("expr", ""))):
                used[name].add(str(rule.get("alert") or rule.get("record")))
    wanted = sorted(
        n for n in used if n not in recorded and not synthetic(n) and n not in params.ignore
    )
    if not wanted:
        return failed(f"the rules in {', '.join(map(str, files))} select no scraped series")
    apps = app_members(state)
    workers = [m for m in state.members if m.kind == "worker" and m.health_url]
    exposed: dict[str, set[str]] = {}
    problems: list[str] = []
    with loopback_client(params.timeout) as http:
        for member in [*apps, *workers]:
            try:
                exposed[member.name] = set(scrape(http, member).names)
            except CheckFailed as exc:
                problems.append(exc.message)
    lines = [f"{len(wanted)} series names used by {len(files)} rule file(s): {', '.join(wanted)}"]
    app_names = [m.name for m in apps]
    for name in wanted:
        holders = [m for m, names in exposed.items() if name in names]
        lacking = [m for m in app_names if m not in holders]
        # An app-side series must be on every instance; a worker-only one on a worker.
        on_apps = any(m in app_names for m in holders)
        if lacking and (on_apps or not holders):
            rules = ", ".join(sorted(used[name])[:3])
            problems.append(f"{name} (used by {rules}) missing on {', '.join(lacking)}")
    for holder, names in exposed.items():
        have = [n for n in wanted if n in names]
        lines.append(f"{holder}: {len(names)} names exposed, {len(have)} of {len(wanted)} used")
    return passed(*lines) if not problems else failed(*lines, *problems)


METRICS_EXPOSED = Verifier(
    "metrics-exposed",
    MetricsExposedParams,
    check_metrics_exposed,
    "every metric the alert rules select is on each app instance's /metrics (or a "
    "worker's, for worker-only series); with --target, each service's /metrics through it",
    live=True,
)


# --- slo-live ---------------------------------------------------------------------------


class SloLiveParams(Params):
    """Parameters of the `slo-live` verifier: the plan, the window between scrapes, and SLOs that
    override the plan's."""

    plan: str | None = None  # default: the running stack's plan
    window: Duration = 10.0  # seconds between the two scrapes
    min_requests: int = Field(100, ge=1)  # fewer in the window: use the totals since start
    p95_ms: float | None = Field(None, gt=0)  # default: the plan's slo.latency.p95_ms
    p99_ms: float | None = Field(None, gt=0)  # default: the plan's slo.latency.p99_ms
    error_rate: float | None = Field(None, ge=0, lt=1)  # default: the plan's slo.error_rate
    exclude_routes: list[str] = Field(default_factory=lambda: ["/metrics", "/health", "/health/*"])
    timeout: Duration = Field(5.0, gt=0, le=60)


Key = tuple[str, ...]


def http_series(
    expo: Exposition, exclude: list[str], sli: Sli
) -> tuple[dict[Key, float], dict[Key, float]]:
    """Request counts by (route, method, status, failed) and bucket counts by (le,), from the
    series and labels `sli` names; `failed` is "1" when the status matches its error regex.
    The selector is not applied: an instance's own page has no target labels."""

    def kept(route: str) -> bool:
        return not any(fnmatch.fnmatchcase(route, pattern) for pattern in exclude)

    failing = re.compile(sli.error_status)
    requests: dict[Key, float] = defaultdict(float)
    for s in expo.series(sli.requests):
        labels = s.label_map
        route = labels.get(sli.route_label, "")
        status = labels.get(sli.status_label, "")
        if kept(route):
            failed = "1" if failing.fullmatch(status) else "0"
            requests[(route, labels.get(sli.method_label, ""), status, failed)] += s.value
    buckets: dict[Key, float] = defaultdict(float)
    for s in expo.series(f"{sli.duration}_bucket"):
        labels = s.label_map
        if kept(labels.get(sli.route_label, "")):
            buckets[(labels.get("le", "+Inf"),)] += s.value
    return requests, buckets


def _delta(after: dict[Key, float], before: dict[Key, float]) -> dict[Key, float]:
    # A counter that went down was reset (the instance restarted): count from zero.
    return {k: (v - before.get(k, 0.0)) if v >= before.get(k, 0.0) else v for k, v in after.items()}


def _sum(parts: list[dict[Key, float]]) -> dict[Key, float]:
    out: dict[Key, float] = defaultdict(float)
    for part in parts:
        for k, v in part.items():
            out[k] += v
    return out


def check_slo_live(params: SloLiveParams, ctx: Context) -> VerifierOutcome:
    """The `slo-live` item: error rate and p95/p99 latency from the app instances' /metrics are
    within the SLOs. Raises CheckFailed (or another ScalectlError), which fails the item, when
    no stack runs or the plan cannot be read."""
    from scalectl.plan.load import load_plan

    if ctx.remote is not None:
        from scalectl.checklist.verifiers import deployment

        return deployment.check_slo_live(params, ctx, ctx.remote)
    state = ctx.stack()
    plan_path = ctx.path(params.plan) if params.plan else Path(state.plan)
    plan = load_plan(plan_path, state.profile if not params.plan else "production").plan
    slo = plan.slo
    raw = [name for name, svc in plan.services.items() if svc.sli.raw]
    if raw:
        return failed(
            f"services.{raw[0]}.sli is raw PromQL: slo-live reads the instances' /metrics, "
            "so it needs the metric form (requests, duration and their labels)"
        )
    limits = {
        "p95_ms": params.p95_ms if params.p95_ms is not None else slo.latency.p95_ms,
        "p99_ms": params.p99_ms if params.p99_ms is not None else slo.latency.p99_ms,
    }
    max_errors = params.error_rate if params.error_rate is not None else slo.error_rate
    apps = app_members(state)
    # Instances are named <service>-<n>.
    slis = [plan.services[m.name.rsplit("-", 1)[0]].sli for m in apps]
    exclude = params.exclude_routes
    with loopback_client(params.timeout) as http:
        first = [http_series(scrape(http, m), exclude, s) for m, s in zip(apps, slis, strict=True)]
        time.sleep(params.window)
        second = [http_series(scrape(http, m), exclude, s) for m, s in zip(apps, slis, strict=True)]
    requests = _sum([_delta(b[0], a[0]) for a, b in zip(first, second, strict=True)])
    buckets = _sum([_delta(b[1], a[1]) for a, b in zip(first, second, strict=True)])
    scope = f"over the last {format_duration(params.window)}"
    if sum(requests.values()) < params.min_requests:
        quiet = sum(requests.values())
        requests = _sum([b[0] for b in second])
        buckets = _sum([b[1] for b in second])
        scope = (
            f"since the instances started ({quiet:.0f} requests in the last "
            f"{format_duration(params.window)})"
        )
    total = sum(requests.values())
    errors = sum(v for (*_, failing), v in requests.items() if failing == "1")
    excluded = ", ".join(params.exclude_routes) or "nothing"
    lines = [f"{total:.0f} requests on {len(apps)} instance(s) {scope}; excluded {excluded}"]
    if total < params.min_requests:
        return failed(
            *lines,
            f"too little traffic to judge: {total:.0f} requests, need {params.min_requests}",
        )
    problems = []
    rate = errors / total
    verdict = "ok" if rate <= max_errors else "too high"
    what = "5xx" if all(s.error_status == DEFAULT_ERROR_STATUS for s in slis) else "failed"
    lines.append(f"error rate {rate:.2%} ({errors:.0f} {what}) vs SLO {max_errors:.2%}: {verdict}")
    if rate > max_errors:
        problems.append(f"error rate {rate:.2%} exceeds {max_errors:.2%}")
    pairs = []
    for (le,), count in buckets.items():
        try:
            pairs.append((float(le), count))  # float() reads "+Inf" too
        except ValueError:
            return failed(*lines, f'{slis[0].duration}_bucket: le="{le}" is not a bound')
    for metric, q in (("p95_ms", 0.95), ("p99_ms", 0.99)):
        limit = limits[metric]
        if limit is None:
            continue
        value = quantile(q, pairs)
        if value is None:
            problems.append(f"{metric}: no latency observations")
            continue
        ms = value * 1000
        verdict = "ok" if ms <= limit else "too slow"
        lines.append(
            f"{metric[:3]} ≈ {ms:.1f} ms (histogram estimate) vs SLO {limit:g} ms: {verdict}"
        )
        if ms > limit:
            problems.append(f"{metric[:3]} ≈ {ms:.1f} ms exceeds {limit:g} ms")
    return passed(*lines) if not problems else failed(*lines, *problems)


SLO_LIVE = Verifier(
    "slo-live",
    SloLiveParams,
    check_slo_live,
    "error rate and p95/p99 latency from the app instances' /metrics (two scrapes `window` "
    "apart, else totals since start) are within the plan's SLOs; with --prometheus, the "
    "plan's SLO alert queries asked there",
    live=True,
)
