"""plan-check: `scalectl plan --check` through the core, on a fresh render or a directory."""

from __future__ import annotations

from pathlib import Path

from scalectl.checklist.verifiers import Context
from tests.checklist.conftest import check
from tests.checklist.verifiers.conftest import PLAN


def test_a_fresh_render_of_the_plan_passes() -> None:
    result = check("{kind: plan-check}", Context(plan=PLAN))
    assert result.status == "pass", result.evidence
    assert (
        result.evidence[0] == f"{PLAN} (production) rendered afresh: 14 of 14 validator checks ok"
    )
    assert "ok: promtool test rules prometheus/rules.test.yml" in result.evidence


def test_tools_select_validators(rendered: Path) -> None:
    result = check(
        f"{{kind: plan-check, dir: {rendered}, tools: [nginx -t, gixy]}}", Context(plan=PLAN)
    )
    assert result.status == "pass", result.evidence
    assert result.evidence == (
        f"{rendered}: 2 of 2 validator checks ok",
        "ok: nginx -t nginx/nginx.conf",
        "ok: gixy nginx/nginx.conf",
    )


def test_a_broken_directory_fails_with_the_validator_output(rendered: Path) -> None:
    conf = rendered / "nginx" / "nginx.conf"
    conf.write_text(conf.read_text().replace("worker_connections", "worker_connectionz", 1))
    result = check(f"{{kind: plan-check, dir: {rendered}, tools: [nginx -t]}}", Context(plan=PLAN))
    assert result.status == "fail"
    assert result.evidence[0] == f"{rendered}: 0 of 1 validator checks ok"
    assert result.evidence[1] == "1 file(s) differ from what the plan renders: nginx/nginx.conf"
    assert result.evidence[2] == "failed: nginx -t nginx/nginx.conf"
    assert 'unknown directive "worker_connectionz"' in result.evidence[3]


def test_a_plan_with_problems_fails_the_item(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.read_text().replace("peak_rps: 400", "peak_rps: -1"))
    result = check("{kind: plan-check}", Context(plan=plan))
    assert result.status == "fail"
    assert result.evidence[0] == f"{plan}: 1 problem"
    assert (
        result.evidence[1] == f"{plan}:11:25 services.api.traffic.peak_rps: must be greater than 0"
    )
