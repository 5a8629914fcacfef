"""The request rate `rps_per_pod` scales on follows the service's SLI (issue 14): the
prometheus-adapter rule reads the SLI's counter and selector, each counter gets its own
metric name, the HPA asks for that name, and a raw SLI is refused with the way out."""

from __future__ import annotations

import os
from pathlib import Path

from scalectl.files import write_tree
from scalectl.plan.validate import run_checks
from tests.helpers.input_files import problems
from tests.helpers.minimal_plan import FIRST_ADDED_LINE, render, with_api
from tests.plan.test_hpa_metrics import adapter_config, hpa

# A second service beside the minimal plan's api, with its own counter and a selector
# whose value holds the adapter template's "<<" delimiter.
SEARCH = """\
  search:
    image: registry.example.com/search:1.2.3
    port: 8001
    route: /search/
    traffic: {peak_rps: 100, headroom: 1.2}
    capacity: {per_replica_rps: 50, target_utilization: 0.75, mean_latency_ms: 100, db_time_ms: 0}
    resources:
      requests: {cpu: "1", memory: 1Gi}
      limits: {cpu: "2", memory: 2Gi}
    replicas: {min: 2, max: 10}
    autoscaling: {rps_per_pod: 40}
    sli: {requests: search_hits_total, selector: 'job="search", handler!~"/x<<y"'}
"""
API_COUNTER = "    autoscaling: {rps_per_pod: 100}\n    sli: {requests: api_requests_total}\n"


def two_services() -> str:
    text = with_api(API_COUNTER)
    return text.replace("database:\n", SEARCH + "database:\n")


def pods_metric(files: dict[str, bytes], workload: str) -> str:
    [pods] = [m["pods"] for m in hpa(files, workload)["metrics"] if m["type"] == "Pods"]
    return str(pods["metric"]["name"])


def test_the_request_rate_is_the_sli_counter_under_its_own_name(tmp_path: Path) -> None:
    files = render(tmp_path, two_services())
    rules = {r["name"]["as"]: r for r in adapter_config(files)["rules"]}
    assert set(rules) == {"api_requests_per_second", "search_search_hits_per_second"}
    assert pods_metric(files, "api") == "api_requests_per_second"
    assert pods_metric(files, "search") == "search_search_hits_per_second"
    api = rules["api_requests_per_second"]
    assert api["seriesQuery"] == 'api_requests_total{namespace!="",pod!=""}'
    assert api["name"]["matches"] == "^api_requests_total$"
    assert api["metricsQuery"] == (
        "sum by (<<.GroupBy>>) (rate(<<.Series>>{<<.LabelMatchers>>}[120s]))"
    )
    # The explicit selector joins the query; "<<" is written as an action printing "<".
    assert rules["search_search_hits_per_second"]["metricsQuery"] == (
        "sum by (<<.GroupBy>>) (rate(<<.Series>>{<<.LabelMatchers>>,"
        'job="search", handler!~"/x<<"<">><y"}[120s]))'
    )
    assert b"http_requests" not in files["kubernetes/prometheus-adapter.yaml"]


def test_the_default_sli_keeps_http_requests_per_second(tmp_path: Path) -> None:
    files = render(tmp_path, with_api("    autoscaling: {rps_per_pod: 100}\n"))
    [rule] = adapter_config(files)["rules"]
    assert rule["name"] == {"matches": "^http_requests_total$", "as": "http_requests_per_second"}
    assert pods_metric(files, "api") == "http_requests_per_second"


def test_the_adapter_rules_of_sli_counters_pass_the_validators(tmp_path: Path) -> None:
    root = tmp_path / "out"
    write_tree(root, render(tmp_path, two_services()))
    results = [
        r
        for r in run_checks(root, "1.30.0", {**os.environ, "CI": "true"})
        if Path(r.target).name == "prometheus-adapter.yaml"
    ]
    assert {r.tool for r in results} == {"promtool check rules", "kubernetes-validate"}
    assert all(r.status == "ok" for r in results), results


RAW_SLI = (
    "    sli:\n"
    "      error_query: 'sum(rate(req_total{code=~\"5..\"}[{{.window}}]))'\n"
    "      total_query: 'sum(rate(req_total[{{.window}}]))'\n"
)


def test_a_raw_sli_cannot_give_the_request_rate(tmp_path: Path) -> None:
    line = FIRST_ADDED_LINE
    explicit = with_api("    autoscaling: {rps_per_pod: 100}\n" + RAW_SLI)
    assert problems(tmp_path, explicit) == [
        f"{line}:32 services.api.autoscaling.rps_per_pod: needs the metric form of sli: a raw "
        "sli (error_query, total_query) gives no per-pod request rate; scale on an "
        "autoscaling.metrics entry for your counter (type: Pods, prometheus: {series: "
        "<counter>, kind: counter}) instead"
    ]
    derived = with_api("    autoscaling: {cpu_percent: null, memory_percent: 80}\n" + RAW_SLI)
    [found] = problems(tmp_path, derived)
    assert found.startswith(f"{line}:32 services.api.autoscaling.cpu_percent: is null, so the")
    assert "set cpu_percent" in found
    # CPU alone needs no request rate: the raw SLI is fine.
    assert render(tmp_path, with_api(RAW_SLI))


def test_a_user_metric_may_not_redefine_the_sli_rate(tmp_path: Path) -> None:
    text = with_api(
        "    sli: {requests: api_requests_total}\n"
        "    autoscaling:\n"
        "      rps_per_pod: 100\n"
        "      metrics:\n"
        "        - type: Pods\n"
        "          name: api_requests_per_second\n"
        "          prometheus: {series: api_requests_total, kind: counter, window_seconds: 60}\n"
        "          target: {type: AverageValue, value: 100}\n"
    )
    assert problems(tmp_path, text) == [
        f"{FIRST_ADDED_LINE + 5}:17 services.api.autoscaling.metrics[0].name: "
        "'api_requests_per_second' is already defined as rate of counter api_requests_total "
        "over 120s per Pod (scalectl's built-in); this one is rate of counter "
        "api_requests_total over 60s per Pod: rename one of them"
    ]
