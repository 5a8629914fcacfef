"""`alerting.burn_rate`: the burn-rate alerts' windows, factors, `for`, severities and disable
flags set in the plan, rendered into slo.rules.yml and proven per window by promtool (issue
14, "Configurable alert windows and severities")."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from scalectl.files import write_tree
from scalectl.plan import prepare, render_files
from tests.conftest import EXAMPLES, fixture_path
from tests.helpers.input_files import problems

MINIMAL = fixture_path("plans", "minimal.yaml").read_text()
EASYCV = (EXAMPLES / "guides" / "easycv.yaml").read_text()

# EasyCV pages 2 minutes after a fast burn; Sloth's 2% of the budget in 1h is factor 14.4.
CUSTOM = """\
  burn_rate:
    page:
      for: 2m
      windows:
        - {long: 1h, short: 5m, budget_percent: 2}
        - {long: 6h, short: 30m, factor: 6}
    ticket:
      for: 30m
      windows:
        - {long: 1d, short: 2h, factor: 3}
        - {long: 3d, short: 6h, factor: 1}
"""


def easycv_with(section: str) -> str:
    anchor = "    QueueDepthHigh: {for: 2m}"
    line = next(x for x in EASYCV.splitlines() if x.startswith(anchor))
    return EASYCV.replace(line + "\n", line + "\n" + section, 1)


def render(tmp_path: Path, text: str) -> tuple[Path, dict[str, Any], list[str]]:
    """Render plan `text`, run promtool check and test on its rules; the prometheus folder,
    slo.rules.yml's rules by (alert, severity) and the plan's warnings."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    prepared = prepare(plan, "production")
    out = tmp_path / "out"
    write_tree(out, render_files(prepared))
    prom = out / "prometheus"
    for args in (["check", "rules", "slo.rules.yml"], ["test", "rules", "rules.test.yml"]):
        run = subprocess.run(
            ["promtool", *args], cwd=prom, capture_output=True, text=True, timeout=120, check=False
        )
        assert run.returncode == 0, run.stdout + run.stderr
    doc = yaml.safe_load((prom / "slo.rules.yml").read_text())
    by_alert = {
        (rule["alert"], rule["labels"]["severity"]): rule
        for group in doc["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    return prom, by_alert, prepared.sizing.warnings


def test_custom_windows_render_and_each_window_is_proven(tmp_path: Path) -> None:
    prom, alerts, warnings = render(tmp_path, easycv_with(CUSTOM))
    page = alerts[("ApiErrorBudgetBurn", "page")]
    assert page["for"] == "2m"
    assert 'slo:sli_error:ratio_rate1h{service="api"} / 0.005 > 14.4' in page["expr"]
    assert alerts[("ApiErrorBudgetBurn", "ticket")]["for"] == "30m"
    # The latency objective's alert uses the same windows, factors and `for`.
    latency = alerts[("ApiLatencyBudgetBurn", "ticket")]
    assert latency["for"] == "30m"
    assert 'slo:sli_latency_error:ratio_rate3d{service="api"} / 0.05 > 1' in latency["expr"]
    assert warnings == []
    tests = yaml.safe_load((prom / "rules.test.yml").read_text())
    names = [t["name"] for t in tests["tests"]]
    assert names[:3] == ["healthy", "broken", "slow burn"]
    windows = [
        "page window 1h/5m fires at burn rate 15.84 (factor 14.4)",
        "page window 1h/5m stays quiet at burn rate 12.96 (factor 14.4)",
        "page window 6h/30m fires at burn rate 6.6 (factor 6)",
        "page window 6h/30m stays quiet at burn rate 5.4 (factor 6)",
        "ticket window 3d/6h fires at burn rate 1.1 (factor 1)",
        "ticket window 3d/6h stays quiet at burn rate 0.9 (factor 1)",
    ]
    # The same windows for the error budget, then for the latency budget.
    assert names[3:] == windows + [f"latency {name}" for name in windows]
    # 1d at 3x spends the budget exactly as 3d at 1x: no burst can fire the one alone.
    text = (prom / "rules.test.yml").read_text()
    for slo in ("", "latency "):
        assert (
            f"# {slo}ticket 1d/2h x3: not tested alone; no burst fires it without the longer "
            "window 3d/6h x1"
        ) in text
    # A rule's factor off by a little fails its window's cases (they are not vacuous); only
    # the 1h/5m window's cases run, to keep this quick.
    rules = (prom / "slo.rules.yml").read_text()
    tests["tests"] = [t for t in tests["tests"] if "1h/5m" in t["name"]]
    (prom / "window.test.yml").write_text(yaml.safe_dump(tests))
    for wrong, failing in (("> 16\n", "fires"), ("> 12\n", "stays quiet")):
        (prom / "slo.rules.yml").write_text(rules.replace("> 14.4\n", wrong))
        run = subprocess.run(
            ["promtool", "test", "rules", "window.test.yml"],
            cwd=prom,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 1, wrong
        for slo in ("", "latency "):
            assert f"name: {slo}page window 1h/5m {failing} at" in run.stderr, wrong


def test_ticket_disabled_and_a_severity_renamed(tmp_path: Path) -> None:
    section = (
        "alerting:\n  burn_rate:\n    ticket: {disable: true}\n    page: {severity: critical}\n"
    )
    text = MINIMAL.replace("max_connections: 100,", "max_connections: 200,") + section
    prom, alerts, warnings = render(tmp_path, text)
    assert list(alerts) == [("ApiErrorBudgetBurn", "critical")]
    assert alerts[("ApiErrorBudgetBurn", "critical")]["for"] == "2m"  # the default
    assert warnings == [
        "alerting.burn_rate.page.severity 'critical': the rendered Alertmanager routes only "
        "page and ticket by name, so this alert reaches the ticket webhook through the default "
        "route (no paging, and no inhibition by a page)"
    ]
    rules = (prom / "slo.rules.yml").read_text()
    assert "ratio_rate1d" not in rules and "ratio_rate3d" not in rules  # no ticket windows


BAD = [
    ("page: {windows: [{long: 1h, short: 5m}]}", "29:", "page.windows[0]: give factor or "),
    (
        "page: {windows: [{long: 1h, short: 5m, factor: 2, budget_percent: 1}]}",
        "29:",
        "page.windows[0]: give factor or budget_percent (exactly one)",
    ),
    (
        "page: {windows: [{long: 60, short: 5m, factor: 2}]}",
        "29:",
        "page.windows[0].long: must be a Prometheus duration of whole days, hours, minutes and "
        "seconds in that order, such as 5m, 6h or 3d, got '60'",
    ),
    (
        "page: {windows: [{long: 1h, short: 30s, factor: 2}]}",
        "29:",
        "page.windows[0].short: must be at least 1m",
    ),
    (
        'page: {windows: [{long: "1h\\n- x", short: 5m, factor: 2}]}',
        "29:",
        "page.windows[0].long: must be a Prometheus duration",
    ),
    (
        "page: {windows: [{long: 1h, short: 5m, factor: 0}]}",
        "29:",
        "page.windows[0].factor: must be greater than 0",
    ),
    (
        "page: {windows: [{long: 1h, short: 5m, factor: .inf}]}",
        "29:",
        "page.windows[0].factor: must be a finite number",
    ),
    ("page: {windows: []}", "29:", "page.windows: list should have at least 1 item"),
    (
        "page: {windows: [" + ", ".join(["{long: 1h, short: 5m, factor: 2}"] * 7) + "]}",
        "29:",
        "page.windows: list should have at most 6 items",
    ),
    (
        "page: {windows: [{long: 1h, short: 1h, factor: 2}]}",
        "29:",
        "page.windows[0].short: must be shorter than long (1h >= 1h)",
    ),
    (
        "page: {windows: [{long: 31d, short: 1h, factor: 2}]}",
        "29:",
        "page.windows[0].long: must be at most the SLO period, slo.availability.period_days "
        "(31d > 30d)",
    ),
    (
        "page: {windows: [{long: 1h, short: 5m, factor: 1000}]}",
        "29:",
        "page.windows[0].factor: burn rate 1000 × the error budget 0.001 is 1: the alert could "
        "never fire, since at most 100% of requests can spend the budget; keep it below 1000",
    ),
    (
        "page: {windows: [{long: 5m, short: 1m, budget_percent: 20}]}",
        "29:",
        "page.windows[0].budget_percent: burn rate 1728 × the error budget 0.001 is 1.728: the "
        "alert could never fire, since at most 100% of requests can spend the budget; keep it "
        "below 11.57 for this window",
    ),
    ("page: {for: 25h}", "29:", "page.for: must be at most 24h, got '25h'"),
    ("page: {severity: Page}", "29:", "page.severity: must be a lowercase letter"),
    ("page: {severity: ticket}", "29:", "page.severity: must differ from ticket's severity"),
    ("ticket: {disable: true}\n    page: {disable: true}", "29:", "ticket.disable: page and"),
    ("pager: {for: 1m}", "29:", "pager: unknown key; did you mean 'page'?"),
]


@pytest.mark.parametrize(("entry", "line", "expected"), BAD, ids=[b[2][:40] for b in BAD])
def test_bad_burn_rate_settings_are_one_line_each(
    tmp_path: Path, entry: str, line: str, expected: str
) -> None:
    found = problems(tmp_path, MINIMAL + f"alerting:\n  burn_rate:\n    {entry}\n")
    [problem] = found
    assert problem.startswith(line), problem  # the line of the entry
    assert problem.split(" ", 1)[1].startswith(f"alerting.burn_rate.{expected}"), problem
