"""`alerting.alerts`: symptom alerts' `for` and severity set in the plan, rendered into the
rules, checked by promtool, and timed by `promtool test rules` (issue 14, "Configurable
alert windows and severities")."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from scalectl.files import write_tree
from scalectl.plan import prepare, render_files
from scalectl.plan.validate import run_checks
from tests.conftest import EXAMPLES, fixture_path
from tests.helpers.input_files import problems

MINIMAL = fixture_path("plans", "minimal.yaml").read_text()
CI_ENV = {**os.environ, "CI": "true"}  # a missing validator is a failure here


def plan_with(tmp_path: Path, text: str, base: str = MINIMAL) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(base + text)
    return path


def rules(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """Alerting rules of alerts.rules.yml by name (the first of each name)."""
    doc = yaml.safe_load(files["prometheus/alerts.rules.yml"])
    out: dict[str, dict[str, Any]] = {}
    for group in doc["groups"]:
        for rule in group["rules"]:
            out.setdefault(rule["alert"], rule)
    return out


SETTINGS = """\
alerting:
  alerts:
    HighErrorRate: {for: 2m, severity: critical}
    MemoryNearLimit: {severity: page}
    Down: {for: 0s}
    QueueJobTooOld: {for: 1h30m, severity: ticket}
    DeadLettersIncreasing: {for: 90s}
"""


def test_for_and_severity_reach_the_rules(tmp_path: Path) -> None:
    prepared = prepare(
        plan_with(tmp_path, SETTINGS, (EXAMPLES / "multi-tier.yaml").read_text()), "production"
    )
    alerts = rules(render_files(prepared))
    assert alerts["ApiHighErrorRate"]["for"] == "2m"
    assert alerts["ApiHighErrorRate"]["labels"]["severity"] == "critical"
    assert alerts["ApiMemoryNearLimit"]["for"] == "15m"  # unset: the default
    assert alerts["ApiMemoryNearLimit"]["labels"]["severity"] == "page"
    # 0s renders no `for:` at all, and the annotation no longer claims "for 5 minutes".
    assert "for" not in alerts["ApiDown"] and "for" not in alerts["AnalysisDown"]
    assert "instance, so the service is down" in alerts["ApiDown"]["annotations"]["description"]
    # One severity for every queue, where the default pages for high priority only.
    assert alerts["AnalysisQueueJobTooOld"]["for"] == "1h30m"
    assert alerts["AnalysisQueueJobTooOld"]["labels"]["severity"] == "ticket"
    assert alerts["AnalysisDeadLettersIncreasing"]["for"] == "90s"
    # What was not set keeps today's values.
    assert alerts["ApiLatencyP95High"]["for"] == "10m"
    assert alerts["ApiLatencyP95High"]["labels"]["severity"] == "page"
    assert alerts["ApiLatencyP99High"]["labels"]["severity"] == "ticket"
    assert prepared.sizing.warnings == [
        "alerting.alerts.HighErrorRate.severity 'critical': the rendered Alertmanager routes "
        "only page and ticket by name, so this alert reaches the ticket webhook through the "
        "default route (no paging, and no inhibition by a page)"
    ]


def test_the_set_rules_pass_promtool_and_their_generated_tests(tmp_path: Path) -> None:
    base = (EXAMPLES / "multi-tier.yaml").read_text()
    prepared = prepare(plan_with(tmp_path, SETTINGS, base), "production")
    out = tmp_path / "out"
    write_tree(out, render_files(prepared))
    results = [r for r in run_checks(out, "1.30.0", CI_ENV) if r.tool.startswith("promtool")]
    assert {r.tool for r in results} == {
        "promtool check rules",
        "promtool test rules",
        "promtool check config",
    }
    assert [f"{r.tool} {r.target}: {r.detail}" for r in results if r.status != "ok"] == []
    # The generated test evaluates after the longest `for` (1h30m) so every alert fires.
    test = yaml.safe_load((out / "prometheus" / "rules.test.yml").read_text())
    assert {c["eval_time"] for t in test["tests"] for c in t["alert_rule_test"]} == {"95m"}


# Errors start at 4m: each minute 6000 requests succeed, and from 4m 600 more fail, so
# HighErrorRate's condition (more than 1% failing over 5m) holds from the 4m evaluation on.
TIMING_TEST = """\
rule_files: [alerts.rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'http_requests_total{job="api", method="GET", route="/", status="200"}'
        values: "0+6000x20"
      - series: 'http_requests_total{job="api", method="GET", route="/", status="503"}'
        values: "0x3 600+600x16"
      - series: 'up{job="api", instance="api-0:8000"}'
        values: "1x20"
    alert_rule_test:
"""


def timing_case(eval_minutes: int, severity: str | None) -> str:
    case = f"      - eval_time: {eval_minutes}m\n        alertname: ApiHighErrorRate\n"
    if severity is None:
        return case + "        exp_alerts: []\n"
    return (
        case + "        exp_alerts:\n"
        f"          - exp_labels: {{service: api, severity: {severity}}}\n"
    )


@pytest.mark.parametrize(
    ("setting", "fires_at", "severity"),
    [
        ("alerting:\n  alerts:\n    HighErrorRate: {for: 2m, severity: ticket}\n", 6, "ticket"),
        ("", 9, "page"),  # the default: for 5m
    ],
    ids=["for 2m", "default 5m"],
)
def test_promtool_fires_after_for_and_not_before(
    tmp_path: Path, setting: str, fires_at: int, severity: str
) -> None:
    files = render_files(prepare(plan_with(tmp_path, setting), "production"))
    doc = yaml.safe_load(files["prometheus/alerts.rules.yml"])
    for group in doc["groups"]:
        for rule in group["rules"]:
            # promtool compares annotations exactly; this test is about timing and labels.
            rule.pop("annotations", None)
    (tmp_path / "alerts.rules.yml").write_text(yaml.safe_dump(doc))
    cases = [
        timing_case(fires_at - 1, None),
        timing_case(fires_at, severity),
        timing_case(fires_at + 5, severity),
    ]
    (tmp_path / "timing.test.yml").write_text(TIMING_TEST + "".join(cases))
    run = subprocess.run(
        ["promtool", "test", "rules", "timing.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "Nope: {for: 1m}",
            "alerting.alerts.Nope: unknown name; known: 'Down', 'HighErrorRate', "
            "'LatencyP95High', 'LatencyP99High', 'MemoryNearLimit', 'EndpointLatencyP95High', "
            "'QueueDepthHigh', 'QueueJobTooOld' or 'DeadLettersIncreasing'",
        ),
        ("Down: {for: 25h}", "alerting.alerts.Down.for: must be at most 24h, got '25h'"),
        (
            "Down: {for: 120}",
            "alerting.alerts.Down.for: must be a Prometheus duration of whole hours, minutes "
            "and seconds in that order, such as 2m, 90s or 1h30m, got '120'",
        ),
        (
            'Down: {for: "1m\\n"}',
            "alerting.alerts.Down.for: must be a Prometheus duration of whole hours, minutes "
            "and seconds in that order, such as 2m, 90s or 1h30m, got '1m\\n'",
        ),
        ("Down: {for: 5m2h}", "alerting.alerts.Down.for: must be a Prometheus duration"),
        ("Down: {for: 1.5m}", "alerting.alerts.Down.for: must be a Prometheus duration"),
        (
            'Down: {severity: "page\\nx: y"}',
            "alerting.alerts.Down.severity: must be a lowercase letter, then at most 30 "
            "lowercase letters, digits, '_' or '-' (such as page or ticket), got 'page\\nx: y'",
        ),
        ("Down: {severity: Page}", "alerting.alerts.Down.severity: must be a lowercase letter"),
        ("Down: {severity: " + "p" * 32 + "}", "alerting.alerts.Down.severity: must be a lower"),
        ("Down: {when: 5m}", "alerting.alerts.Down.when: unknown key"),
        # The burn-rate alerts: refused with the reason and where they are set, not as
        # unknown names.
        (
            "LatencyBudgetBurn: {for: 2m}",
            "alerting.alerts.LatencyBudgetBurn: a burn-rate alert is not set here: it is a page "
            "and a ticket alert, each with windows, burn rates and `for` of its own; set them in "
            "alerting.burn_rate.page and alerting.burn_rate.ticket",
        ),
        (
            "ErrorBudgetBurn: {severity: ticket}",
            "alerting.alerts.ErrorBudgetBurn: a burn-rate alert is not set here",
        ),
    ],
)
def test_bad_settings_are_one_line_each(tmp_path: Path, entry: str, expected: str) -> None:
    [problem] = problems(tmp_path, MINIMAL + f"alerting:\n  alerts:\n    {entry}\n")
    line = problem.split(" ", 1)[1]
    assert line.startswith(expected), problem
    assert problem.startswith("29:"), problem  # the line of the entry
