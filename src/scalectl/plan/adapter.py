"""prometheus-adapter's rules for the metrics the plan's HPAs scale on (besides CPU and
memory): one rule per metric name, with the PromQL that defines it
(kubernetes/prometheus-adapter.yaml)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from scalectl.plan.escape import ADAPTER_LEFT_DELIM_ACTION, adapter_template_text
from scalectl.plan.model import Plan
from scalectl.plan.scalingmetrics import (
    OBJECT_KINDS,
    QUEUE_DEPTH,
    MetricDefinition,
    ScalingMetric,
    request_rate,
)

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class UsedMetric:
    """A metric an HPA scales on, the plan path that asks for it (the workload's
    `autoscaling` for a built-in one), and the field that names it."""

    path: Path
    definition: MetricDefinition
    builtin: bool
    name_field: Path


def used_metrics(plan: Plan) -> list[UsedMetric]:
    """Every adapter-served metric of the plan's HPAs, in plan order, built-ins included."""
    used: list[UsedMetric] = []
    for name, svc in plan.services.items():
        auto = svc.autoscaling
        base: Path = ("services", name, "autoscaling")
        if not auto.enabled:
            continue
        rate = request_rate(name, svc.sli)
        if auto.uses_request_rate and rate is not None:
            # Named after the SLI's counter (a raw SLI has none: scalectl.plan.rules refuses).
            used.append(UsedMetric(base, rate, True, ("services", name, "sli", "requests")))
        for i, metric in enumerate(auto.metrics):
            used.append(_user_metric((*base, "metrics", i), metric))
    for name, worker in plan.workers.items():
        base = ("workers", name, "autoscaling")
        metrics = worker.autoscaling.metrics
        if metrics is None:
            used.append(UsedMetric(base, QUEUE_DEPTH, True, base))
            continue
        for i, metric in enumerate(metrics):
            used.append(_user_metric((*base, "metrics", i), metric))
    return used


def _user_metric(path: Path, metric: ScalingMetric) -> UsedMetric:
    return UsedMetric(path, metric.definition(), False, (*path, "name"))


def conflicts(plan: Plan) -> Iterator[tuple[Path, str]]:
    """One problem per metric the plan defines differently from the first of its name (a
    built-in one comes first): the adapter serves one series per name."""
    by_name: dict[tuple[str, str], list[UsedMetric]] = {}
    for used in used_metrics(plan):
        by_name.setdefault((used.definition.api, used.definition.name), []).append(used)
    for group in by_name.values():
        first = next((u for u in group if u.builtin), group[0])
        where = "scalectl's built-in" if first.builtin else ".".join(map(str, first.path))
        for used in group:
            d = used.definition
            if d != first.definition:
                yield (
                    used.name_field,
                    f"'{d.name}' is already defined as {first.definition.describe()} ({where}); "
                    f"this one is {d.describe()}: rename one of them",
                )


@dataclass(frozen=True)
class AdapterRule:
    """One prometheus-adapter discovery rule: which series, which labels name Kubernetes
    resources, the name it is served under, and its query (the adapter's Go template)."""

    definition: MetricDefinition
    series_query: str
    resources: list[tuple[str, str, str]]  # (label, group, resource)
    matches: str
    metrics_query: str
    used_by: list[str]


def adapter_rules(plan: Plan) -> list[AdapterRule]:
    """The adapter rules the plan needs, one per metric name, custom ones first."""
    users: dict[MetricDefinition, list[str]] = {}
    for used in used_metrics(plan):
        users.setdefault(used.definition, []).append(".".join(map(str, used.path[:2])))
    rules = [_rule(d, sorted(set(who))) for d, who in users.items()]
    return sorted(rules, key=lambda r: (r.definition.api, r.definition.name))


def _rule(d: MetricDefinition, used_by: list[str]) -> AdapterRule:
    series = f"{d.series}_bucket" if d.kind == "histogram" else d.series
    resources = [("namespace", "", "namespace")]
    if d.resource == "Pod":
        resources.append(("pod", "", "pod"))
    elif d.resource is not None:
        resources.append((d.resource.lower(), OBJECT_KINDS[d.resource][1], d.resource.lower()))
    present = ",".join(f'{label}!=""' for label, _, _ in resources)
    return AdapterRule(
        definition=d,
        series_query=f"{series}{{{present}}}",
        resources=resources,
        matches=f"^{series}$",
        metrics_query=metrics_query(d),
        used_by=used_by,
    )


def metrics_query(d: MetricDefinition) -> str:
    """The adapter's query for `d`: per object (pod, service, ...) for custom metrics, one
    total for external ones."""
    selected = "<<.Series>>{<<.LabelMatchers>>}"
    if d.matchers:
        selected = f"<<.Series>>{{<<.LabelMatchers>>,{adapter_template_text(d.matchers)}}}"
    if d.window_seconds is not None:
        selected = f"rate({selected}[{d.window_seconds}s])"
    by = "<<.GroupBy>>" if d.api == "custom" else ""
    if d.kind == "histogram":
        grouping = f"le, {by}" if by else "le"
        return f"histogram_quantile({d.quantile:g}, sum by ({grouping}) ({selected}))"
    return f"sum by ({by}) ({selected})" if by else f"sum({selected})"


def promtool_rules(rendered: str) -> str:
    """A Prometheus rules file holding each query of a rendered
    kubernetes/prometheus-adapter.yaml as a recording rule, with the adapter's placeholders
    filled in as it fills them, so `promtool check rules` parses the PromQL. Raises
    ValueError when the file is not such a ConfigMap."""
    import yaml

    docs = [d for d in yaml.safe_load_all(rendered) if d]
    try:
        [config_map] = docs
        config = yaml.safe_load(config_map["data"]["config.yaml"])
        rules = [*config.get("rules", []), *config.get("externalRules", [])]
        recorded = []
        for rule in rules:
            series = rule["name"]["matches"].strip("^$")
            query = (
                rule["metricsQuery"]
                .replace("<<.Series>>", series)
                .replace("<<.LabelMatchers>>", 'namespace="default"')
                .replace("<<.GroupBy>>", "pod")
                .replace(ADAPTER_LEFT_DELIM_ACTION, "<")
            )
            recorded.append({"record": f"adapter:{rule['name']['as']}", "expr": query})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a prometheus-adapter ConfigMap: {exc!r}") from exc
    return yaml.safe_dump({"groups": [{"name": "prometheus-adapter", "rules": recorded}]})
