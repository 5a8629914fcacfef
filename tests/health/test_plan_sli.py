"""`scalectl health --plan`: the default /metrics condition reads each service's own SLI
request counter (name, status and route labels, error regex), not the reference app's
`http_requests_total` (issue 14: a service exporting other names was judged on nothing)."""

from __future__ import annotations

from pathlib import Path

from scalectl.health.checks import default_checks
from scalectl.health.conditions import Observation, evaluate
from scalectl.health.config import config_checks, load_config
from scalectl.health.targets import PlanFacts, from_plan
from tests.conftest import EXAMPLES

# express-prom-bundle's page: the histogram's _count is the request counter (ClipSync).
EXPRESS = b"""# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_count{method="GET",path="/clips",status_code="200"} 90
http_request_duration_seconds_count{method="GET",path="/clips",status_code="503"} 10
http_request_duration_seconds_count{method="GET",path="/health/ready",status_code="503"} 50
"""


def metrics_conditions(plan: Path, target: str) -> list[str]:
    targets, facts = from_plan(plan, "production")
    checks = default_checks(targets, facts)
    [check] = [c for c in checks if c.target.name == target and c.name == "/metrics"]
    return [c.text for c in check.conditions]


def judged(texts: list[str], page: bytes) -> bool:
    targets, facts = from_plan(EXAMPLES / "guides" / "clipsync.yaml", "production")
    [check] = [c for c in default_checks(targets, facts) if c.target.name == "api-1"][3:]
    assert [c.text for c in check.conditions] == texts
    obs = Observation(connected=True, status=200, body=page, content_type="text/plain")
    return all(evaluate(c, obs).ok for c in check.conditions)


def test_the_metrics_default_reads_the_services_sli_counter() -> None:
    texts = metrics_conditions(EXAMPLES / "guides" / "clipsync.yaml", "api-1")
    assert texts == [
        "[STATUS] == 200",
        '[METRIC].http_request_duration_seconds_count{status_code=~"5..",path!~"/health.*|'
        '/metrics"} / [METRIC].http_request_duration_seconds_count{path!~"/health.*|/metrics"}'
        " <= 0.01",
    ]
    # 10% of the page's requests failed (the probes' 503s left out): above the 1% error rate.
    assert judged(texts, EXPRESS) is False
    healthy = EXPRESS.replace(b'status_code="503"} 10', b'status_code="503"} 0')
    assert judged(texts, healthy) is True


def test_the_error_regex_and_labels_of_a_custom_sli() -> None:
    texts = metrics_conditions(EXAMPLES / "custom-sli.yaml", "api-1")
    assert texts[1].startswith('[METRIC].api_requests_total{code=~"5..|429",handler!~')
    # A raw-PromQL SLI cannot be evaluated on one page: only the 200 is checked.
    assert metrics_conditions(EXAMPLES / "custom-sli.yaml", "admin-1") == ["[STATUS] == 200"]


def test_a_config_path_takes_its_targets_service_and_no_plan_keeps_the_default(
    tmp_path: Path,
) -> None:
    config = tmp_path / "health.yaml"
    config.write_text("version: 1\nendpoints:\n  - name: m\n    path: /metrics\n")
    targets, facts = from_plan(EXAMPLES / "custom-sli.yaml", "production")
    checks = config_checks(load_config(config), targets, facts)
    by_target = {c.target.name: [x.text for x in c.conditions] for c in checks}
    assert "api_requests_total" in by_target["api-1"][1]
    assert by_target["admin-1"] == ["[STATUS] == 200"]

    [url] = [c for c in default_checks(targets[:1], PlanFacts()) if c.name == "/metrics"]
    assert url.conditions[1].text == (
        '[METRIC].http_requests_total{status=~"5..",route!~"/health.*|/metrics"} / '
        '[METRIC].http_requests_total{route!~"/health.*|/metrics"} <= 0.01'
    )
