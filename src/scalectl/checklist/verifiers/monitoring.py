"""`prometheus`: monitoring is live. The stack's Prometheus is ready, scrapes every target
successfully, and has loaded the alerting rules that were rendered for it."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from scalectl.checklist.model import Duration, VerifierOutcome, failed, passed
from scalectl.checklist.verifiers.alerting import rules_in
from scalectl.checklist.verifiers.base import (
    Context,
    Params,
    Verifier,
    require_loopback,
)
from scalectl.errors import CheckFailed
from scalectl.netguard import loopback_client

if TYPE_CHECKING:
    import httpx


class PrometheusParams(Params):
    """Parameters of the `prometheus` verifier: its URL, how long to wait for targets, and the
    time limit per request."""

    url: str | None = None  # default: the running stack's Prometheus
    wait: Duration = Field(30.0, ge=0, le=600)  # seconds for targets not (yet) up to be scraped up
    timeout: Duration = Field(5.0, gt=0, le=60)  # seconds per request


_POLL = 1.0  # seconds between looks at the targets while some are not up


def _get(client: httpx.Client, url: str, key: str) -> list[dict[str, Any]]:
    """`data[key]` of a Prometheus API answer: a list of objects. Anything else (an HTML page
    from something that is not Prometheus, an error status, a changed API) is CheckFailed
    with one clear line, never an exception from deep inside."""
    response = client.get(url)
    if response.status_code != 200:
        raise CheckFailed(f"{url} -> {response.status_code}: not the Prometheus API")
    try:
        body = response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise CheckFailed(f"{url}: not a Prometheus API answer (not JSON: {kind})") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(data, dict):
        raise CheckFailed(f"{url}: not a Prometheus API answer (no status: success and data)")
    items = data.get(key)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise CheckFailed(f"{url}: not a Prometheus API answer (data.{key} is not a list)")
    return items


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _labels(target: dict[str, Any]) -> dict[str, Any]:
    labels = target.get("labels")
    return labels if isinstance(labels, dict) else {}


def check_prometheus(params: PrometheusParams, ctx: Context) -> VerifierOutcome:
    """The `prometheus` item: Prometheus is ready, every scrape target is up (waiting up to
    `wait`), and the rendered alerts are loaded; with --prometheus, that one and the plan's
    jobs and alerts. Raises CheckFailed (or another ScalectlError), which fails the item,
    when no stack runs or the URL is not loopback."""
    import httpx

    if ctx.remote is not None:
        from scalectl.checklist.verifiers import deployment

        return deployment.check_prometheus(params, ctx, ctx.remote)
    rendered_rules: list[Path] = []
    if params.url:
        base = params.url.rstrip("/")
    else:
        state = ctx.stack()
        base = state.urls.get("prometheus", "")
        if not base:
            return failed(f"the stack in {state.state_dir} runs no Prometheus", *state.notes)
        rendered_rules = sorted(
            (Path(state.state_dir) / "rendered" / "prometheus").glob("*.rules.yml")
        )
    require_loopback(base)
    lines: list[str] = []
    problems: list[str] = []
    targets_url = f"{base}/api/v1/targets?state=active"
    try:
        with loopback_client(params.timeout) as client:
            ready = client.get(f"{base}/-/ready")
            if ready.status_code != 200:
                return failed(f"{base}/-/ready -> {ready.status_code}: Prometheus is not ready")
            lines.append(f"Prometheus {base} ready")
            # A target not scraped yet is "unknown", and one that was restarted stays "down"
            # until its next scrape; a Prometheus just started lists no target until its
            # discovery first syncs (a few seconds): give each up to `wait` seconds, bounded
            # in time and in the number of polls.
            deadline = time.monotonic() + params.wait
            for _ in range(int(params.wait / _POLL) + 1):
                targets = _get(client, targets_url, "activeTargets")
                pending = [t for t in targets if t.get("health") != "up"]
                if (targets and not pending) or time.monotonic() >= deadline:
                    break
                time.sleep(min(_POLL, max(0.0, deadline - time.monotonic())))
            rules = _get(client, f"{base}/api/v1/rules", "groups")
    except httpx.HTTPError as exc:
        return failed(f"{base}: {type(exc).__name__}: {exc}")
    jobs = Counter(str(_labels(t).get("job", "?")) for t in targets)
    up = [t for t in targets if t.get("health") == "up"]
    lines.append(
        f"targets: {len(up)} of {len(targets)} up ("
        + ", ".join(f"{job} {n}" for job, n in sorted(jobs.items()))
        + ")"
    )
    if not targets:
        problems.append("Prometheus scrapes no target")
    for t in targets:
        if t.get("health") != "up":
            problems.append(
                f"{_labels(t).get('job')} {t.get('scrapeUrl')}: {t.get('health')}"
                + (f" ({t['lastError']})" if t.get("lastError") else "")
            )
    loaded = {
        str(r.get("name"))
        for g in rules
        for r in _list(g.get("rules"))
        if isinstance(r, dict) and r.get("type") == "alerting"
    }
    lines.append(f"rules: {len(rules)} groups, {len(loaded)} distinct alerts loaded")
    if rendered_rules:
        wanted = {str(r["alert"]) for p in rendered_rules for r in rules_in(p) if "alert" in r}
        missing = sorted(wanted - loaded)
        if missing:
            problems.append(f"alerts rendered but not loaded: {', '.join(missing)}")
        else:
            lines.append(f"every rendered alert is loaded ({len(wanted)})")
    if not loaded:
        problems.append("no alerting rule is loaded")
    return passed(*lines) if not problems else failed(*lines, *problems)


PROMETHEUS = Verifier(
    "prometheus",
    PrometheusParams,
    check_prometheus,
    "the stack's Prometheus is ready, every scrape target is up, and the rendered alerts "
    "are loaded; with --prometheus, the plan's jobs are up and its alerts loaded there",
    live=True,
)
