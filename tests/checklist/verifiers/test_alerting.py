"""alert-rules: the rendered rules pass promtool; a corrupted rule file fails the item."""

from __future__ import annotations

from pathlib import Path

from scalectl.checklist.verifiers import Context
from tests.checklist.conftest import check
from tests.checklist.verifiers.conftest import PLAN


def test_rendered_rules_pass_promtool(rendered: Path) -> None:
    result = check(f"{{kind: alert-rules, dir: {rendered}}}", Context(plan=PLAN))
    assert result.status == "pass", result.evidence
    assert result.evidence == (
        "prometheus/alerts.rules.yml: 23 alerts, 0 recording rules",
        "prometheus/slo.rules.yml: 2 alerts, 12 recording rules",
        "promtool check rules prometheus/alerts.rules.yml: ok",
        "promtool check rules prometheus/slo.rules.yml: ok",
        "promtool test rules prometheus/rules.test.yml: ok",
    )


def test_a_corrupted_rule_file_fails(rendered: Path) -> None:
    rules = rendered / "prometheus" / "alerts.rules.yml"
    rules.write_text(
        rules.read_text().replace("rate(http_requests_total", "rate(http_requests_total[", 1)
    )
    result = check(f"{{kind: alert-rules, dir: {rendered}}}", Context(plan=PLAN))
    assert result.status == "fail"
    assert "promtool check rules prometheus/alerts.rules.yml: failed" in result.evidence
    assert result.evidence[-1] == "the rules do not pass promtool"


def test_no_rules_at_all_fails(rendered: Path) -> None:
    for path in (rendered / "prometheus").glob("*.rules.yml"):
        path.unlink()
    result = check(f"{{kind: alert-rules, dir: {rendered}}}", Context(plan=PLAN))
    assert result.evidence == (f"{rendered}: no prometheus/*.rules.yml",)
