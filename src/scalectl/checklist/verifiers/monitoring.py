"""`prometheus`: monitoring is live. The stack's Prometheus is ready, scrapes every target
successfully, and has loaded the alerting rules that were rendered for it."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from scalectl.checklist.model import Outcome, failed, passed
from scalectl.checklist.verifiers.alerting import rules_in
from scalectl.checklist.verifiers.base import Context, Params, Verifier, require_loopback
from scalectl.errors import CheckFailed

if TYPE_CHECKING:
    import httpx


class PrometheusParams(Params):
    url: str | None = None  # default: the running stack's Prometheus
    wait: float = Field(30.0, ge=0, le=600)  # seconds for targets not (yet) up to be scraped up
    timeout: float = Field(5.0, gt=0, le=60)  # seconds per request


def _get(client: httpx.Client, url: str) -> Any:
    response = client.get(url)
    if response.status_code != 200:
        raise CheckFailed(f"{url} -> {response.status_code}")
    body = response.json()
    if not isinstance(body, dict) or body.get("status") != "success":
        raise CheckFailed(f"{url}: unexpected answer")
    return body["data"]


def check_prometheus(params: PrometheusParams, ctx: Context) -> Outcome:
    import httpx

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
    try:
        with httpx.Client(timeout=params.timeout) as client:
            ready = client.get(f"{base}/-/ready")
            if ready.status_code != 200:
                return failed(f"{base}/-/ready -> {ready.status_code}: Prometheus is not ready")
            lines.append(f"Prometheus {base} ready")
            # A target not scraped yet is "unknown", and one that was restarted stays "down"
            # until its next scrape: give both up to `wait` seconds (bounded).
            deadline = time.monotonic() + params.wait
            while True:
                targets = _get(client, f"{base}/api/v1/targets?state=active")["activeTargets"]
                pending = [t for t in targets if t.get("health") != "up"]
                if not pending or time.monotonic() >= deadline:
                    break
                time.sleep(1.0)
            rules = _get(client, f"{base}/api/v1/rules")["groups"]
    except httpx.HTTPError as exc:
        return failed(f"{base}: {type(exc).__name__}: {exc}")
    jobs = Counter(t.get("labels", {}).get("job", "?") for t in targets)
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
                f"{t.get('labels', {}).get('job')} {t.get('scrapeUrl')}: {t.get('health')}"
                + (f" ({t['lastError']})" if t.get("lastError") else "")
            )
    loaded = {
        r.get("name") for g in rules for r in g.get("rules", []) if r.get("type") == "alerting"
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
    "are loaded",
)
