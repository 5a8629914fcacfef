"""HPA metrics of the user's choosing (`autoscaling.metrics`, issue 14 "custom or external
metrics"): a worker on queue depth and an API on p95 latency rendered, the
prometheus-adapter rules that serve them, the validators passing, and every bad value
refused at its file:line with its field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from scalectl.files import write_tree
from scalectl.plan.validate import run_checks
from tests.helpers.input_files import problems
from tests.helpers.minimal_plan import FIRST_ADDED_LINE, MINIMAL, render, with_api

# The API scales on p95 latency and requests per second per pod, besides CPU.
API_METRICS = """\
    autoscaling:
      metrics:
        - type: Pods
          name: http_request_duration_p95_seconds
          prometheus: {series: http_request_duration_seconds, kind: histogram, quantile: 0.95}
          target: {type: AverageValue, value: 250m}
        - type: Pods
          name: api_requests_per_second
          prometheus: {series: api_requests_total, kind: counter, window_seconds: 60}
          target: {type: AverageValue, value: 120}
        - type: Object
          name: nginx_ingress_requests_per_second
          object: {kind: Ingress, name: shop}
          prometheus: {series: nginx_ingress_controller_requests, kind: counter}
          target: {type: Value, value: 2k}
"""

# A worker on the depth of its `default` queue, 30 waiting jobs per replica.
WORKER = """\
workers:
  jobs:
    image: registry.example.com/shop:1.2.3
    replicas: {min: 1, max: 20}
    resources:
      requests: {cpu: 500m, memory: 512Mi}
      limits: {cpu: "1", memory: 1Gi}
    queues:
      - {name: default, arrival_rate: 20, mean_duration_seconds: 0.5, target_wait_seconds: 5}
    autoscaling:
      metrics:
        - type: External
          name: queue_depth
          selector: {queue: default}
          target: {type: AverageValue, value: 30}
      behavior:
        scale_down: {policies: [{type: Pods, value: 1, period_seconds: 120}]}
"""


def documents(files: dict[str, bytes], path: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(files[path]) if d]


def hpa(files: dict[str, bytes], workload: str) -> dict[str, Any]:
    docs = documents(files, f"kubernetes/{workload}.yaml")
    [found] = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    return dict(found["spec"])


def adapter_config(files: dict[str, bytes]) -> dict[str, Any]:
    [config_map] = documents(files, "kubernetes/prometheus-adapter.yaml")
    assert config_map["kind"] == "ConfigMap"
    return dict(yaml.safe_load(config_map["data"]["config.yaml"]))


def test_a_worker_scales_on_the_depth_of_its_queue(tmp_path: Path) -> None:
    files = render(tmp_path, MINIMAL + WORKER)
    spec = hpa(files, "jobs")
    assert spec["metrics"] == [
        {
            "type": "External",
            "external": {
                "metric": {
                    "name": "queue_depth",
                    "selector": {"matchLabels": {"queue": "default"}},
                },
                "target": {"type": "AverageValue", "averageValue": "30"},
            },
        }
    ]
    assert spec["behavior"]["scaleDown"]["policies"] == [
        {"type": "Pods", "value": 1, "periodSeconds": 120}
    ]
    [rule] = adapter_config(files)["externalRules"]
    assert rule == {
        "seriesQuery": 'queue_depth{namespace!=""}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}}},
        "name": {"matches": "^queue_depth$", "as": "queue_depth"},
        "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>})",
    }


def test_an_api_scales_on_p95_latency_and_requests_per_pod(tmp_path: Path) -> None:
    files = render(tmp_path, with_api(API_METRICS))
    metrics = hpa(files, "api")["metrics"]
    assert metrics[0]["resource"]["name"] == "cpu"  # the default CPU target stays
    assert metrics[1:] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "http_request_duration_p95_seconds"},
                "target": {"type": "AverageValue", "averageValue": "250m"},
            },
        },
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "api_requests_per_second"},
                "target": {"type": "AverageValue", "averageValue": "120"},
            },
        },
        {
            "type": "Object",
            "object": {
                "describedObject": {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "Ingress",
                    "name": "shop",
                },
                "metric": {"name": "nginx_ingress_requests_per_second"},
                "target": {"type": "Value", "value": "2k"},
            },
        },
    ]
    rules = {r["name"]["as"]: r for r in adapter_config(files)["rules"]}
    latency = rules["http_request_duration_p95_seconds"]
    assert latency["seriesQuery"] == 'http_request_duration_seconds_bucket{namespace!="",pod!=""}'
    assert latency["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
    assert latency["metricsQuery"] == (
        "histogram_quantile(0.95, sum by (le, <<.GroupBy>>) "
        "(rate(<<.Series>>{<<.LabelMatchers>>}[120s])))"
    )
    assert rules["api_requests_per_second"]["metricsQuery"] == (
        "sum by (<<.GroupBy>>) (rate(<<.Series>>{<<.LabelMatchers>>}[60s]))"
    )
    ingress = rules["nginx_ingress_requests_per_second"]
    assert ingress["resources"]["overrides"]["ingress"] == {
        "group": "networking.k8s.io",
        "resource": "ingress",
    }


def test_the_built_in_request_rate_target_gets_its_rule_too(tmp_path: Path) -> None:
    assert "kubernetes/prometheus-adapter.yaml" not in render(tmp_path, MINIMAL)  # CPU only
    files = render(tmp_path, with_api("    autoscaling: {rps_per_pod: 100}\n"))
    [rule] = adapter_config(files)["rules"]
    assert rule["name"] == {"matches": "^http_requests_total$", "as": "http_requests_per_second"}
    assert rule["metricsQuery"] == (
        "sum by (<<.GroupBy>>) (rate(<<.Series>>{<<.LabelMatchers>>}[120s]))"
    )


def test_the_rendered_hpas_and_adapter_rules_pass_the_validators(tmp_path: Path) -> None:
    root = tmp_path / "out"
    write_tree(root, render(tmp_path, with_api(API_METRICS) + WORKER))
    wanted = {"api.yaml", "jobs.yaml", "prometheus-adapter.yaml"}
    results = [
        r
        for r in run_checks(root, "1.30.0", {**os.environ, "CI": "true"})
        if Path(r.target).name in wanted
    ]
    checked = {(r.tool, Path(r.target).name) for r in results}
    assert checked == {
        ("kubernetes-validate", "api.yaml"),
        ("kubernetes-validate", "jobs.yaml"),
        ("kubernetes-validate", "prometheus-adapter.yaml"),
        ("promtool check rules", "prometheus-adapter.yaml"),
    }
    assert all(r.status == "ok" for r in results), [r for r in results if r.status != "ok"]


def test_promtool_refuses_a_broken_adapter_query(tmp_path: Path) -> None:
    root = tmp_path / "out"
    files = render(tmp_path, MINIMAL + WORKER)
    broken = files["kubernetes/prometheus-adapter.yaml"].replace(
        b'metricsQuery: "sum(', b'metricsQuery: "sum(('
    )
    assert broken != files["kubernetes/prometheus-adapter.yaml"]
    write_tree(root, {"kubernetes/prometheus-adapter.yaml": broken})
    [result] = run_checks(
        root, "1.30.0", {**os.environ, "CI": "true"}, lambda tool, _: tool.startswith("promtool")
    )
    assert result.status == "failed", result


def test_bad_metric_values_are_refused_at_their_field(tmp_path: Path) -> None:
    text = with_api(
        "    autoscaling:\n"
        "      metrics:\n"
        "        - type: External\n"
        "          name: queue depth\n"
        "          selector: {app.kubernetes.io/name: x, queue: default queue}\n"
        "          target: {type: AverageValue, value: 30 jobs}\n"
        "        - type: Pods\n"
        "          name: latency\n"
        "          target: {type: AverageValue, value: 0}\n"
    )
    line = FIRST_ADDED_LINE
    assert problems(tmp_path, text) == [
        f"{line + 3}:17 services.api.autoscaling.metrics[0].name: must be a Prometheus metric "
        "name: letters, digits, '_' and ':', not starting with a digit, at most 200 characters",
        f"{line + 4}:22 services.api.autoscaling.metrics[0].selector.app.kubernetes.io/name: "
        "must be a label name both "
        "Kubernetes and Prometheus accept: letters, digits and '_', starting with a letter and "
        "ending with a letter or digit, at most 63 characters",
        f"{line + 4}:56 services.api.autoscaling.metrics[0].selector.queue: must be a "
        "Kubernetes label value: letters, digits, '-', '_' and '.', starting and ending with "
        "a letter or digit, at most 63 characters",
        f"{line + 5}:47 services.api.autoscaling.metrics[0].target.value: must be a Kubernetes "
        "quantity such as 30, 300m, 1.5k or 2Gi (digits with an optional m, k, M, G, Ki, Mi, "
        "Gi... suffix)",
        f"{line + 8}:47 services.api.autoscaling.metrics[1].target.value: must be at least 1m "
        "(0.001) and at most 1e15",
    ]


def test_each_source_takes_only_its_target_types_and_fields(tmp_path: Path) -> None:
    text = with_api(
        "    autoscaling:\n"
        "      metrics:\n"
        "        - type: External\n"
        "          name: queue_depth\n"
        "          target: {type: Utilization, value: 70}\n"
        "        - type: Pods\n"
        "          name: api_requests_per_second\n"
        "          object: {kind: Service, name: api}\n"
        "          prometheus: {kind: gauge, quantile: 0.9, window_seconds: 60}\n"
        "          target: {type: Value, value: 100}\n"
        "        - type: Object\n"
        "          name: hits\n"
        "          target: {type: Value, value: 100}\n"
    )
    line = FIRST_ADDED_LINE
    prefix = "services.api.autoscaling.metrics"
    assert problems(tmp_path, text) == [
        f"{line + 4}:26 {prefix}[0].target.type: a External metric takes Value or "
        "AverageValue (Utilization is for CPU and memory: cpu_percent, memory_percent)",
        f"{line + 7}:19 {prefix}[1].object: only an Object metric describes an object",
        f"{line + 8}:47 {prefix}[1].prometheus.quantile: only a histogram has quantiles",
        f"{line + 8}:68 {prefix}[1].prometheus.window_seconds: a gauge is not a rate: no window",
        f"{line + 9}:26 {prefix}[1].target.type: a Pods metric takes AverageValue",
        f"{line + 10}:17 {prefix}[2].type: an Object metric needs `object` (the kind and name "
        "it describes)",
    ]


def test_one_definition_per_metric_name(tmp_path: Path) -> None:
    # The worker's default HPA already serves queue_depth as a gauge.
    text = (
        with_api(
            "    autoscaling:\n"
            "      metrics:\n"
            "        - type: External\n"
            "          name: queue_depth\n"
            "          prometheus: {series: redis_queue_length}\n"
            "          target: {type: AverageValue, value: 30}\n"
        )
        + WORKER[: WORKER.index("    autoscaling:")]
    )
    line = FIRST_ADDED_LINE
    assert problems(tmp_path, text) == [
        f"{line + 3}:17 services.api.autoscaling.metrics[0].name: 'queue_depth' is already "
        "defined as gauge queue_depth (scalectl's built-in); this one is gauge "
        "redis_queue_length: rename one of them"
    ]


def test_metrics_and_selectors_are_bounded(tmp_path: Path) -> None:
    metric = "        - {type: Pods, name: m, target: {type: AverageValue, value: 1}}\n"
    labels = ", ".join(f"l{i}: v" for i in range(11))
    many_labels = with_api(
        "    autoscaling:\n      metrics:\n"
        f"        - {{type: External, name: e, selector: {{{labels}}}, "
        "target: {type: Value, value: 1}}\n"
    )
    [found] = problems(tmp_path, many_labels)
    assert found.startswith(f"{FIRST_ADDED_LINE + 2}:47 services.api.autoscaling.metrics[0].")
    assert "selector: dictionary should have at most 10 items" in found
    many_metrics = with_api("    autoscaling:\n      metrics:\n" + metric * 11)
    [found] = problems(tmp_path, many_metrics)
    assert found.startswith(f"{FIRST_ADDED_LINE + 2}:9 services.api.autoscaling.metrics: ")
    assert "at most 10 items" in found


def test_a_workload_may_not_take_the_adapter_rules_file_name(tmp_path: Path) -> None:
    text = MINIMAL.replace("  api:\n", "  prometheus-adapter:\n")
    assert problems(tmp_path, text)[0].endswith(
        "services.prometheus-adapter: 'prometheus-adapter' is reserved for a rendered manifest"
    )


def test_escaping_holds_when_a_hostile_selector_slips_past_its_pattern(tmp_path: Path) -> None:
    """The second line of defence: an unvalidated metric (model_copy skips validation)."""
    from dataclasses import replace

    from scalectl.plan import Prepared, prepare, render_files

    path = tmp_path / "plan.yaml"
    path.write_text(with_api(API_METRICS))
    prepared = prepare(path, "production")
    plan = prepared.loaded.plan
    api = plan.services["api"]
    hostile = 'x"\n  evil: [1]\u2028k: v'
    metric = api.autoscaling.metrics[0].model_copy(
        update={"name": hostile, "selector": {"queue": hostile}}
    )
    auto = api.autoscaling.model_copy(update={"metrics": [metric]})
    services = {"api": api.model_copy(update={"autoscaling": auto})}
    loaded = replace(prepared.loaded, plan=plan.model_copy(update={"services": services}))
    files = render_files(Prepared(loaded, prepared.sizing))
    pods = hpa(files, "api")["metrics"][-1]["pods"]
    assert pods["metric"] == {"name": hostile, "selector": {"matchLabels": {"queue": hostile}}}


@pytest.mark.parametrize(
    ("kind", "api_version", "group"),
    [
        ("Service", "v1", ""),
        ("HTTPRoute", "gateway.networking.k8s.io/v1", "gateway.networking.k8s.io"),
        ("StatefulSet", "apps/v1", "apps"),
    ],
)
def test_an_object_metric_describes_each_kind_the_adapter_can_map(
    tmp_path: Path, kind: str, api_version: str, group: str
) -> None:
    text = with_api(
        "    autoscaling:\n"
        "      metrics:\n"
        "        - type: Object\n"
        "          name: route_requests_per_second\n"
        f"          object: {{kind: {kind}, name: shop}}\n"
        "          prometheus: {series: route_requests_total, kind: counter}\n"
        "          target: {type: AverageValue, value: 100}\n"
    )
    files = render(tmp_path, text)
    [metric] = hpa(files, "api")["metrics"][1:]
    assert metric["object"]["describedObject"] == {
        "apiVersion": api_version,
        "kind": kind,
        "name": "shop",
    }
    [rule] = adapter_config(files)["rules"]
    label = kind.lower()
    wanted = {"group": group, "resource": label} if group else {"resource": label}
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, label: wanted}
    assert rule["seriesQuery"] == f'route_requests_total{{namespace!="",{label}!=""}}'
    root = tmp_path / "out"
    write_tree(root, files)
    results = [
        r
        for r in run_checks(root, "1.30.0", {**os.environ, "CI": "true"})
        if Path(r.target).name in {"api.yaml", "prometheus-adapter.yaml"}
    ]
    assert results and all(r.status == "ok" for r in results), results


def test_an_object_of_another_kind_is_refused_at_its_field(tmp_path: Path) -> None:
    text = with_api(
        "    autoscaling:\n"
        "      metrics:\n"
        "        - type: Object\n"
        "          name: x_per_second\n"
        "          object: {kind: DaemonSet, name: shop}\n"
        "          target: {type: Value, value: 1}\n"
    )
    assert problems(tmp_path, text) == [
        "20:26 services.api.autoscaling.metrics[0].object.kind: must be 'Service', 'Ingress', "
        "'HTTPRoute', 'Deployment' or 'StatefulSet'"
    ]
