"""Hostile plan strings that would change a rendered file's structure are refused (issue 11).

Each case exits 2 with a located message naming the field and writes nothing; the escape
functions are checked on their own, as the second line of defence.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from scalectl.errors import ExitCode
from scalectl.plan import escape
from tests.conftest import EXAMPLES, Result, tree

Cli = Callable[..., Result]
MULTI = EXAMPLES / "multi-tier.yaml"


def _production(plan: dict[str, Any], value: str) -> None:
    plan["profiles"]["production"]["server_name"] = value


def _endpoint(plan: dict[str, Any], key: str) -> None:
    plan["slo"]["endpoints"][key] = {"latency": {"p95_ms": 500}}


def _ttl(plan: dict[str, Any], key: str) -> None:
    plan["cache"]["ttl_seconds"][key] = 60


def _env(plan: dict[str, Any], key: str) -> None:
    plan["services"]["api"].setdefault("env", {})[key] = "x"


def _hpa_metric(**fields: str) -> Callable[[dict[str, Any], str], None]:
    """Sets an External metric on services.api whose `fields` (name, selector key or value,
    target value) take the case's argument."""

    def mutate(plan: dict[str, Any], value: str) -> None:
        metric: dict[str, Any] = {
            "type": "External",
            "name": "queue_depth",
            "selector": {"queue": "default"},
            "target": {"type": "AverageValue", "value": "30"},
        }
        for field in fields:
            if field == "key":
                metric["selector"] = {value: "default"}
            elif field == "label":
                metric["selector"] = {"queue": value}
            elif field == "value":
                metric["target"]["value"] = value
            else:
                metric[field] = value
        plan["services"]["api"].setdefault("autoscaling", {})["metrics"] = [metric]

    return mutate


def _sli(field: str) -> Callable[[dict[str, Any], str], None]:
    def mutate(plan: dict[str, Any], value: str) -> None:
        sli = plan["services"]["api"].setdefault("sli", {})
        if field.endswith("_query"):
            sli["total_query"] = "sum(rate(x_total[{{.window}}]))"
        sli[field] = value

    return mutate


# case -> (mutation, its argument, the field the message must name)
HOSTILE: dict[str, tuple[Callable[[dict[str, Any], str], None], str, str]] = {
    "server-name-location": (
        _production,
        "_;\n location /files/ { alias /etc/; autoindex on; }\n #",
        "profiles.production.server_name",
    ),
    "server-name-include": (
        _production,
        "_; include /some/file; #",
        "profiles.production.server_name",
    ),
    "server-name-regex": (_production, "~^(?<x>.+)$", "profiles.production.server_name"),
    "endpoint-promql-quote": (
        _endpoint,
        'GET /api/stats"} or vector(1) #',
        "slo.endpoints",
    ),
    "endpoint-go-template": (
        _endpoint,
        "GET /api/{{ .Labels }}",
        "slo.endpoints",
    ),
    "endpoint-newline": (_endpoint, "GET /api/stats\n- alert: X", "slo.endpoints"),
    "endpoint-no-method": (_endpoint, "/api/stats", "slo.endpoints"),
    "webhook-line-separator": (
        lambda plan, url: plan.setdefault("alerting", {}).update(page_webhook_url=url),
        "http://127.0.0.1:9095/page\u2028templates: [/etc/passwd]",
        "alerting.page_webhook_url",
    ),
    "webhook-space": (
        lambda plan, url: plan.setdefault("alerting", {}).update(ticket_webhook_url=url),
        "http://127.0.0.1:9095/ticket #x",
        "alerting.ticket_webhook_url",
    ),
    "runbook-newline": (
        lambda plan, url: plan.setdefault("alerting", {}).update(runbook_base_url=url),
        "https://runbooks.example.com/\n  x",
        "alerting.runbook_base_url",
    ),
    "ttl-key-newline": (_ttl, 'stats:\n      EVIL: "1"\n      X', "cache.ttl_seconds"),
    "ttl-key-upper": (_ttl, "Stats", "cache.ttl_seconds"),
    "env-key-newline": (_env, "A:\n  B", "services.api.env"),
    "worker-command-newline": (
        lambda plan, arg: plan["workers"]["analysis"].update(command=["celery", arg]),
        'worker"]\n    privileged: true\n    x: ["',
        "workers.analysis.command[1]",
    ),
    "worker-metrics-path-newline": (
        lambda plan, path: plan["workers"]["analysis"].update(
            command=["celery", "worker"], metrics={"port": 9191, "path": path}
        ),
        '/metrics"\n    privileged: true\n    x: "',
        "workers.analysis.metrics.path",
    ),
    # pydantic's \d matches any Unicode digit; these reach nginx and kubernetes-validate.
    "body-size-unicode-digits": (
        lambda plan, size: plan.setdefault("load_balancer", {}).update(client_max_body_size=size),
        "\u0661\u0660m",
        "load_balancer.client_max_body_size",
    ),
    "listen-unicode-digits": (
        lambda plan, listen: plan["profiles"]["production"].update(listen=listen),
        "0.0.0.0:\u0668\u0660",
        "profiles.production.listen",
    ),
    "hpa-metric-name-promql": (
        _hpa_metric(name=""),
        'queue_depth"} or vector(1) #',
        "services.api.autoscaling.metrics[0].name",
    ),
    "hpa-metric-name-newline": (
        _hpa_metric(name=""),
        "queue_depth\n  x: y",
        "services.api.autoscaling.metrics[0].name",
    ),
    "hpa-selector-key-newline": (
        _hpa_metric(key=""),
        "queue:\n  x",
        "services.api.autoscaling.metrics[0].selector",
    ),
    "hpa-selector-value-quote": (
        _hpa_metric(label=""),
        'default"}',
        "services.api.autoscaling.metrics[0].selector.queue",
    ),
    "hpa-target-value-newline": (
        _hpa_metric(value=""),
        "30\n  x: y",
        "services.api.autoscaling.metrics[0].target.value",
    ),
    # services.<name>.sli reaches PromQL, rule YAML, promtool tests and the dashboard JSON.
    "sli-requests-promql": (_sli("requests"), 'x{a="b"} or vector(1)', "services.api.sli.requests"),
    "sli-label-newline": (
        _sli("status_label"),
        "code\n- alert: X",
        "services.api.sli.status_label",
    ),
    "sli-label-reserved": (_sli("route_label"), "__name__", "services.api.sli.route_label"),
    "sli-selector-quote": (
        _sli("selector"),
        'job="api"} or vector(1) or x{a="b"',
        "services.api.sli.selector",
    ),
    "sli-selector-yaml-quote": (_sli("selector"), 'job="it\'s"', "services.api.sli.selector"),
    "sli-selector-grafana-variable": (
        _sli("selector"),
        'job="$service"',
        "services.api.sli.selector",
    ),
    "sli-error-status-quote": (
        _sli("error_status"),
        '5.."} or vector(1) #',
        "services.api.sli.error_status",
    ),
    "sli-query-go-template": (
        _sli("error_query"),
        'sum(rate(x_total{a="{{ .Labels }}"}[{{.window}}]))',
        "services.api.sli.error_query",
    ),
    "sli-query-newline": (
        _sli("error_query"),
        "sum(rate(x_total[{{.window}}]))\n- alert: X",
        "services.api.sli.error_query",
    ),
    "sli-query-line-separator": (
        _sli("error_query"),
        "sum(rate(x_total[{{.window}}]))\u2028k: v",
        "services.api.sli.error_query",
    ),
    "sli-query-too-long": (
        _sli("error_query"),
        "sum(rate(x_total[{{.window}}]))" + " + 0" * 300,
        "services.api.sli.error_query",
    ),
    "kubernetes-version-unicode-digits": (
        lambda plan, version: plan.update(kubernetes_version=version),
        "1.\u0663\u0660.0",
        "kubernetes_version",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_string_exits_2_located_nothing_written(
    cli: Cli, tmp_path: Path, case: str
) -> None:
    mutate, value, field = HOSTILE[case]
    data = yaml.safe_load(MULTI.read_text())
    mutate(data, value)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("x")

    result = cli("plan", plan, "--profile", "production", "-o", out)

    assert result.code == ExitCode.BAD_INPUT, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    located = [line for line in result.stderr.splitlines() if line.startswith(f"{plan}:")]
    assert any(f" {field}" in line for line in located), result.stderr
    assert tree(out) == {"keep": b"x"}


def test_real_endpoint_keys_and_server_names_are_accepted(cli: Cli, tmp_path: Path) -> None:
    data = yaml.safe_load(MULTI.read_text())
    _endpoint(data, "PATCH /api/submissions/{submission_id}")
    _endpoint(data, "DELETE /api/jobs/{job_id}/result.json")
    _production(data, "cv.example.com *.cv.example.com _")
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(data, sort_keys=False))
    result = cli("plan", plan, "--profile", "production", "-o", tmp_path / "out")
    assert result.code == 0, result.stderr


def test_promql_label_value_escapes_quotes_backslashes_and_line_breaks() -> None:
    assert escape.promql_label('a"} or vector(1) #') == 'a\\"} or vector(1) #'
    assert escape.promql_label("a\\b\nc\u2028d") == "a\\\\b\\nc\\u2028d"
    assert escape.promql_label("GET /api/{id}") == "GET /api/{id}"


def test_go_template_text_cannot_open_an_action() -> None:
    escaped = escape.go_template_text("x {{ .Labels }} {")
    assert "{{ ." not in escaped
    assert escaped == 'x {{"{"}}{ .Labels }} {{"{"}}'
    assert escape.go_template_text("/api/{id}") == "/api/{id}"


def test_yaml_and_json_quoting_keep_one_scalar() -> None:
    for text in ["a\u2028templates: [x]", "a: b\n- c", "x # y", '"q"']:
        assert yaml.safe_load(f"k: {escape.yaml_str(text)}") == {"k": text}
        assert yaml.safe_load(escape.json_str(text)) == text
    assert "\u2028" not in escape.yaml_str("a\u2028b")


def test_escaping_holds_when_a_pattern_lets_a_hostile_key_through() -> None:
    """The second line of defence: render an unvalidated key (model_copy skips validation)."""
    from dataclasses import replace

    from scalectl.plan import Prepared, prepare, render_files

    prepared = prepare(MULTI, "production")
    plan = prepared.loaded.plan
    key = 'GET /api/x"} or vector(1) #{{ .Labels }}\u2028k: v'
    slo = plan.slo.model_copy(update={"endpoints": {key: plan.slo.endpoints["GET /api/stats"]}})
    loaded = replace(prepared.loaded, plan=plan.model_copy(update={"slo": slo}))
    files = render_files(Prepared(loaded, prepared.sizing))

    rules = yaml.safe_load(files["prometheus/alerts.rules.yml"])
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    (alert,) = [a for a in alerts if a["alert"].endswith("EndpointLatencyP95High")]
    assert 'route="/api/x\\"} or vector(1) #{{ .Labels }}\\u2028k: v"' in alert["expr"]
    assert alert["labels"]["route"] == '/api/x"} or vector(1) #{{ .Labels }}\u2028k: v'
    assert "{{ .Labels" not in alert["annotations"]["description"]
    assert '{{"{"}}{ .Labels }}' in alert["annotations"]["description"]


def test_escaping_holds_when_a_pattern_lets_a_hostile_argv_through() -> None:
    """A worker argv that skipped validation (model_copy) still renders as one list entry."""
    from dataclasses import replace

    from scalectl.plan import Prepared, prepare, render_files

    prepared = prepare(MULTI, "production")
    plan = prepared.loaded.plan
    arg = 'x"]\n    privileged: true\u2028k: v $(HOME) #'
    worker = plan.workers["analysis"].model_copy(update={"command": ["celery", arg]})
    loaded = replace(
        prepared.loaded, plan=plan.model_copy(update={"workers": {"analysis": worker}})
    )
    files = render_files(Prepared(loaded, prepared.sizing))

    compose = yaml.safe_load(files["compose/docker-compose.yaml"])["services"]["analysis"]
    assert compose["command"] == ["celery", arg.replace("$", "$$")]
    assert "privileged" not in compose
    docs = [d for d in yaml.safe_load_all(files["kubernetes/analysis.yaml"]) if d]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["celery", arg.replace("$", "$$")]
    assert "privileged" not in container


def test_escaping_holds_when_a_pattern_lets_a_hostile_metrics_path_through() -> None:
    """A worker's metrics path that skipped validation (model_copy) stays one value in the
    scrape config and in every probe."""
    from dataclasses import replace

    from scalectl.plan import Prepared, prepare, render_files
    from scalectl.plan.workloads import WorkerMetrics

    prepared = prepare(MULTI, "production")
    plan = prepared.loaded.plan
    path = '/m"\n    privileged: true\u2028k: v #'
    metrics = WorkerMetrics(port=9400).model_copy(update={"path": path})
    worker = plan.workers["analysis"].model_copy(
        update={"command": ["celery", "worker"], "metrics": metrics}
    )
    loaded = replace(
        prepared.loaded, plan=plan.model_copy(update={"workers": {"analysis": worker}})
    )
    files = render_files(Prepared(loaded, prepared.sizing))

    config = yaml.safe_load(files["prometheus/prometheus.yml"])
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "analysis"]
    assert job["metrics_path"] == path
    docs = [d for d in yaml.safe_load_all(files["kubernetes/analysis.yaml"]) if d]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == path
    assert "privileged" not in container


def test_escaping_holds_when_a_pattern_lets_a_hostile_probe_command_through() -> None:
    """A worker's health.exec entry that skipped validation (model_copy) stays one list
    entry in every probe and in the Compose healthcheck."""
    from dataclasses import replace

    from scalectl.plan import Prepared, prepare, render_files
    from scalectl.plan.probes import WorkerHealth

    prepared = prepare(MULTI, "production")
    plan = prepared.loaded.plan
    arg = 'x"]\n    privileged: true\u2028k: v $(HOME) #'
    health = WorkerHealth().model_copy(update={"exec": ["celery", arg]})
    worker = plan.workers["analysis"].model_copy(
        update={"command": ["celery", "worker"], "health": health}
    )
    loaded = replace(
        prepared.loaded, plan=plan.model_copy(update={"workers": {"analysis": worker}})
    )
    files = render_files(Prepared(loaded, prepared.sizing))

    compose = yaml.safe_load(files["compose/docker-compose.yaml"])["services"]["analysis"]
    assert compose["healthcheck"]["test"] == ["CMD", "celery", arg.replace("$", "$$")]
    assert "privileged" not in compose
    docs = [d for d in yaml.safe_load_all(files["kubernetes/analysis.yaml"]) if d]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"] == ["celery", arg.replace("$", "$$")]
    assert "privileged" not in container
