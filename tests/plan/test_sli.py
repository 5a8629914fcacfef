"""`services.<name>.sli`: a service's own request counter, histogram and labels, or raw
PromQL, reach every rule, promtool test, the dashboard and slo-live (issue 14, "Plan")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from scalectl.checklist.verifiers.metrics import http_series
from scalectl.exposition import parse
from scalectl.files import write_tree
from scalectl.plan import prepare, render_files
from scalectl.plan.sli import Sli
from scalectl.plan.validate import run_checks
from tests.conftest import EXAMPLES, fixture_path
from tests.helpers.input_files import problems

CUSTOM = EXAMPLES / "custom-sli.yaml"
MINIMAL = fixture_path("plans", "minimal.yaml").read_text()
CI_ENV = {**os.environ, "CI": "true"}


def exprs(files: dict[str, bytes], name: str) -> dict[str, str]:
    """Rule expressions of a rule file by alert or record name (+ service label)."""
    doc = yaml.safe_load(files[f"prometheus/{name}"])
    out = {}
    for group in doc["groups"]:
        for rule in group["rules"]:
            key = rule.get("alert") or f"{rule['record']}/{rule['labels']['service']}"
            out.setdefault(key, rule["expr"])
    return out


def test_the_metric_form_reaches_alerts_slo_rules_and_the_dashboard() -> None:
    files = render_files(prepare(CUSTOM, "production"))
    alerts = exprs(files, "alerts.rules.yml")
    assert 'api_requests_total{job="api", code=~"5..|429"}[5m]' in alerts["ApiHighErrorRate"]
    assert "api_request_duration_seconds_bucket{job=" in alerts["ApiLatencyP95High"]
    assert 'verb="GET", handler="/api/stats"' in alerts["ApiEndpointLatencyP95High"]
    slo = exprs(files, "slo.rules.yml")
    assert (
        'api_requests_total{job="api", code=~"5..|429"}[1h]'
        in slo["slo:sli_error:ratio_rate1h/api"]
    )
    # The admin service's SLI is raw PromQL with Sloth's window placeholder filled in.
    assert (
        'django_http_responses_total_by_status_total{job="admin", status=~"5.."}[30m]'
        in slo["slo:sli_error:ratio_rate30m/admin"]
    )
    assert alerts["AdminDown"].strip() == 'absent(up{job="admin", tier=~"internal|ops"} == 1)'
    every = "\n".join([*alerts.values(), *slo.values()])
    assert "http_requests_total" not in every
    assert "http_request_duration_seconds" not in every
    dashboard = json.dumps(json.loads(files["grafana/dashboard.json"]))
    assert "http_requests_total" not in dashboard
    assert "http_request_duration_seconds" not in dashboard
    assert 'api_requests_total{job=~\\"$service\\", job=~\\"api\\", code=~' in dashboard
    assert "label_replace(sum(sum(rate(django_http_responses_total" in dashboard


def test_the_rendered_custom_sli_passes_promtool_and_its_tests(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, render_files(prepare(CUSTOM, "production")))
    results = [r for r in run_checks(out, "1.30.0", CI_ENV) if r.tool.startswith("promtool")]
    assert len(results) == 5  # rules, tests, alerts, slo and the adapter's queries
    assert [f"{r.tool} {r.target}: {r.detail}" for r in results if r.status != "ok"] == []
    tests = yaml.safe_load((out / "prometheus" / "rules.test.yml").read_text())
    broken = next(t for t in tests["tests"] if t["name"] == "broken")
    series = [s["series"] for s in broken["input_series"]]
    assert 'api_requests_total{job="api", verb="GET", handler="/", code="503"}' in series
    alerts = {c["alertname"] for c in broken["alert_rule_test"]}
    assert {"ApiHighErrorRate", "ApiErrorBudgetBurn", "AdminDown"} <= alerts
    assert "AdminHighErrorRate" not in alerts  # raw PromQL: no series to make for it


SELECTOR = """\
    sli:
      selector: 'job="shop-api", namespace=~"prod|canary", pod!="debug"'
      error_status: "5..|429"
"""


def test_a_selector_and_error_regex_reach_the_generated_tests(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        MINIMAL.replace(
            "    replicas: {min: 2, max: 10}\n", "    replicas: {min: 2, max: 10}\n" + SELECTOR
        )
    )
    files = render_files(prepare(path, "production"))
    alerts = exprs(files, "alerts.rules.yml")
    assert alerts["ApiHighErrorRate"].startswith(
        '(sum(rate(http_requests_total{job="shop-api", namespace=~"prod|canary", pod!="debug", '
        'status=~"5..|429"}[5m])) or vector(0))'
    )
    out = tmp_path / "out"
    write_tree(out, files)
    results = [r for r in run_checks(out, "1.30.0", CI_ENV) if r.tool == "promtool test rules"]
    assert [r.status for r in results] == ["ok"], [r.detail for r in results]


def test_bad_raw_promql_fails_the_promtool_check(tmp_path: Path) -> None:
    raw = (
        "    sli:\n"
        "      error_query: 'sum(rate(x_total{code=~\"5..\"}[{{.window}}])) +'\n"
        "      total_query: 'sum(rate(x_total[{{.window}}]))'\n"
    )
    path = tmp_path / "plan.yaml"
    path.write_text(
        MINIMAL.replace(
            "    replicas: {min: 2, max: 10}\n", "    replicas: {min: 2, max: 10}\n" + raw
        )
    )
    out = tmp_path / "out"
    write_tree(out, render_files(prepare(path, "production")))
    results = {
        Path(r.target).name: r
        for r in run_checks(out, "1.30.0", CI_ENV)
        if r.tool == "promtool check rules"
    }
    assert results["slo.rules.yml"].status != "ok"
    assert "parse error" in results["slo.rules.yml"].detail, results["slo.rules.yml"].detail


@pytest.mark.parametrize(
    ("sli", "expected"),
    [
        ("{requests: 9_requests}", "requests: must be a Prometheus metric name"),
        ("{status_label: code-x}", "status_label: must be a Prometheus label name"),
        ("{selector: 'job=api'}", "selector: must be label matchers separated by commas"),
        ("{selector: 'job!=\"\"'}", "selector: needs a matcher with a non-empty value"),
        ("{error_status: '5(('}", "error_status: is not a valid regular expression"),
        (
            "{error_query: 'sum(rate(x[5m]))', total_query: 'sum(rate(y[{{.window}}]))'}",
            "error_query: must contain the window placeholder {{.window}}",
        ),
        (
            "{error_query: 'sum(rate(x[{{.window}}])'}",
            "error_query: has unbalanced parentheses or braces",
        ),
        (
            "{error_query: 'sum(rate(x[{{.window}}]))'}",
            "error_query: give total_query too: the raw form needs both queries",
        ),
        (
            "{requests: x_total, error_query: 'sum(rate(x[{{.window}}]))', "
            "total_query: 'sum(rate(y[{{.window}}]))'}",
            "requests: give the raw form (error_query, total_query) or this, not both",
        ),
    ],
)
def test_bad_sli_is_one_line_naming_the_field(tmp_path: Path, sli: str, expected: str) -> None:
    text = MINIMAL.replace(
        "    replicas: {min: 2, max: 10}\n", f"    replicas: {{min: 2, max: 10}}\n    sli: {sli}\n"
    )
    [problem] = problems(tmp_path, text)
    assert problem.startswith("16:"), problem  # the sli line
    assert f"services.api.sli.{expected}" in problem, problem


EXPOSITION = """\
# TYPE api_requests_total counter
api_requests_total{verb="GET",handler="/x",code="200"} 90
api_requests_total{verb="GET",handler="/x",code="429"} 6
api_requests_total{verb="GET",handler="/health",code="503"} 50
api_requests_total{verb="GET",handler="/x",code="503"} 4
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/x",status="500"} 1000
# TYPE api_request_duration_seconds histogram
api_request_duration_seconds_bucket{handler="/x",le="0.1"} 80
api_request_duration_seconds_bucket{handler="/x",le="+Inf"} 100
"""


def test_slo_live_reads_the_series_and_labels_the_sli_names() -> None:
    sli = Sli(
        requests="api_requests_total",
        duration="api_request_duration_seconds",
        status_label="code",
        route_label="handler",
        method_label="verb",
        error_status="5..|429",
    )
    requests, buckets = http_series(parse(EXPOSITION), ["/health"], sli)
    assert sum(requests.values()) == 100  # /health left out, http_requests_total ignored
    assert sum(v for (*_, failed), v in requests.items() if failed == "1") == 10
    assert dict(buckets) == {("0.1",): 80, ("+Inf",): 100}


# --- slo.latency_objective --------------------------------------------------------------

OBJECTIVE = "  latency_objective: {threshold_ms: 300, target: 0.95}\n"


def with_objective(tmp_path: Path, sli: str = "", objective: str = OBJECTIVE) -> Path:
    text = MINIMAL.replace(
        "    replicas: {min: 2, max: 10}\n", f"    replicas: {{min: 2, max: 10}}\n{sli}"
    )
    path = tmp_path / "plan.yaml"
    path.write_text(text + objective)
    return path


def test_a_latency_objective_renders_burn_rate_rules_from_the_bucket(tmp_path: Path) -> None:
    files = render_files(prepare(with_objective(tmp_path), "production"))
    slo = exprs(files, "slo.rules.yml")
    assert slo["slo:sli_latency_error:ratio_rate1h/api"] == (
        '(sum(rate(http_request_duration_seconds_count{job="api"}[1h])) - '
        'sum(rate(http_request_duration_seconds_bucket{job="api", le="0.3"}[1h])))\n'
        '  / (sum(rate(http_request_duration_seconds_count{job="api"}[1h])) > 0)\n'
    )
    assert slo["slo:latency_budget:ratio/api"] == "vector(0.05)"
    page = slo["ApiLatencyBudgetBurn"]
    assert 'slo:sli_latency_error:ratio_rate1h{service="api"} / 0.05 > 14.4' in page
    assert 'slo:sli_latency_error:ratio_rate5m{service="api"} / 0.05 > 14.4' in page


def test_a_whole_second_threshold_matches_both_le_spellings(tmp_path: Path) -> None:
    objective = "  latency_objective: {threshold_ms: 1000, target: 0.99}\n"
    files = render_files(prepare(with_objective(tmp_path, objective=objective), "production"))
    assert 'le=~"1|1.0"' in exprs(files, "slo.rules.yml")["slo:sli_latency_error:ratio_rate5m/api"]


def test_promtool_proves_the_latency_burn_fires_and_stays_quiet(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(out, render_files(prepare(with_objective(tmp_path), "production")))
    results = [r for r in run_checks(out, "1.30.0", CI_ENV) if r.tool.startswith("promtool")]
    assert [f"{r.tool} {r.target}: {r.detail}" for r in results if r.status != "ok"] == []
    tests = {
        t["name"]: t
        for t in yaml.safe_load((out / "prometheus/rules.test.yml").read_text())["tests"]
    }

    def expected(test: str) -> list[str]:
        [case] = [
            c for c in tests[test]["alert_rule_test"] if c["alertname"] == "ApiLatencyBudgetBurn"
        ]
        return [a["exp_labels"]["severity"] for a in case["exp_alerts"]]

    assert expected("healthy") == []  # 0.5% slow: within the 5% budget
    assert expected("broken") == ["page", "ticket"]
    assert expected("slow burn") == ["ticket"]  # 10% slow: twice the budget


def test_a_threshold_between_the_given_buckets_is_refused(tmp_path: Path) -> None:
    sli = "    sli: {buckets: [0.1, 0.25, 0.5, 1]}\n"
    [problem] = problems(tmp_path, with_objective(tmp_path, sli).read_text())
    assert problem == (
        "16:20 services.api.sli.buckets: holds no bound at slo.latency_objective.threshold_ms "
        "(0.3s): the share of faster requests is read from that bucket"
    )


def test_a_raw_latency_pair_needs_both_queries(tmp_path: Path) -> None:
    sli = "    sli: {good_query: 'sum(rate(x_bucket{le=\"0.3\"}[{{.window}}]))'}\n"
    [problem] = problems(tmp_path, with_objective(tmp_path, sli).read_text())
    assert "services.api.sli.good_query: give valid_query too" in problem


# express-prom-bundle and prom-client: the histogram's _count is the request counter.
COUNTED_BY_HISTOGRAM = """\
    sli:
      requests: http_request_duration_seconds_count
      status_label: status_code
      buckets: [0.003, 0.03, 0.1, 0.3, 1.5, 10]
"""


def test_a_histogram_counting_the_requests_gets_one_series_per_status(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(
        out, render_files(prepare(with_objective(tmp_path, COUNTED_BY_HISTOGRAM), "production"))
    )
    results = [r for r in run_checks(out, "1.30.0", CI_ENV) if r.tool.startswith("promtool")]
    assert [f"{r.tool} {r.target}: {r.detail}" for r in results if r.status != "ok"] == []
    tests = {
        t["name"]: t
        for t in yaml.safe_load((out / "prometheus/rules.test.yml").read_text())["tests"]
    }
    for name, test in tests.items():
        series = [s["series"] for s in test["input_series"]]
        assert len(series) == len(set(series)), name
        counts = [s for s in series if s.startswith("http_request_duration_seconds_count")]
        # Every request counted once, by status: no status-less count beside the counter.
        assert counts and all("status_code=" in s for s in counts), name

    def expected(test: str, alert: str) -> list[str]:
        [case] = [c for c in tests[test]["alert_rule_test"] if c["alertname"] == alert]
        return [a["exp_labels"]["severity"] for a in case["exp_alerts"]]

    assert expected("healthy", "ApiLatencyBudgetBurn") == []
    assert expected("healthy", "ApiErrorBudgetBurn") == []
    assert expected("broken", "ApiLatencyBudgetBurn") == ["page", "ticket"]
    assert expected("broken", "ApiHighErrorRate") == ["page"]
    assert expected("slow burn", "ApiLatencyBudgetBurn") == ["ticket"]


def test_a_selector_with_yaml_punctuation_reads_back_whole(tmp_path: Path) -> None:
    # "#" and ": " are valid in a selector's regex and end a plain YAML scalar: the Down
    # alert's expr was cut at "#" (invalid PromQL) or made the file invalid YAML at ": ".
    path = tmp_path / "plan.yaml"
    selector = '    sli:\n      selector: \'job="api", tier=~"internal #x|ops: y"\'\n'
    path.write_text(
        MINIMAL.replace(
            "    replicas: {min: 2, max: 10}\n", "    replicas: {min: 2, max: 10}\n" + selector
        )
    )
    files = render_files(prepare(path, "production"))
    alerts = exprs(files, "alerts.rules.yml")
    assert alerts["ApiDown"].strip() == 'absent(up{job="api", tier=~"internal #x|ops: y"} == 1)'
    out = tmp_path / "out"
    write_tree(out, files)
    results = [r for r in run_checks(out, "1.30.0", CI_ENV) if r.tool.startswith("promtool")]
    assert results and all(r.status == "ok" for r in results), [r.detail for r in results]
