"""Render a sized plan into config files, in memory, deterministically."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scalectl import templating
from scalectl.errors import ScalectlError
from scalectl.plan import burnrate, context, escape, ratelimits
from scalectl.plan.load import LoadedPlan
from scalectl.plan.sizing import Sizing

if TYPE_CHECKING:
    import jinja2

Files = dict[str, bytes]  # relative output path -> content


@dataclass(frozen=True)
class Target:
    """One template and where it renders to: once, or once per service or worker ({name} in the
    path), when its condition holds."""

    template: str
    path: str  # may contain {name}
    each: str = "plan"  # plan | service | worker
    when: Callable[[dict[str, Any]], bool] = lambda ctx: True


TARGETS: tuple[Target, ...] = (
    Target("nginx/nginx.conf.j2", "nginx/nginx.conf"),
    Target("compose/docker-compose.yaml.j2", "compose/docker-compose.yaml"),
    Target("kubernetes/namespace.yaml.j2", "kubernetes/namespace.yaml"),
    Target("kubernetes/service.yaml.j2", "kubernetes/{name}.yaml", each="service"),
    Target("kubernetes/worker.yaml.j2", "kubernetes/{name}.yaml", each="worker"),
    Target("kubernetes/locust.yaml.j2", "kubernetes/loadtest.yaml"),
    Target(
        "kubernetes/prometheus-adapter.yaml.j2",
        "kubernetes/prometheus-adapter.yaml",
        when=lambda ctx: bool(ctx["adapter_rules"]),
    ),
    Target("prometheus/prometheus.yml.j2", "prometheus/prometheus.yml"),
    Target("prometheus/alerts.rules.yml.j2", "prometheus/alerts.rules.yml"),
    Target("prometheus/slo.rules.yml.j2", "prometheus/slo.rules.yml"),
    Target("prometheus/rules.test.yml.j2", "prometheus/rules.test.yml"),
    Target("alertmanager/alertmanager.yml.j2", "alertmanager/alertmanager.yml"),
    Target("grafana/dashboard.json.j2", "grafana/dashboard.json"),
    Target("grafana/loadtest-dashboard.json.j2", "grafana/loadtest-dashboard.json"),
    Target(
        "pgbouncer/pgbouncer.ini.j2",
        "pgbouncer/pgbouncer.ini",
        when=lambda ctx: bool(ctx["database"] and ctx["database"].pgbouncer.enabled),
    ),
)


@functools.cache
def environment() -> jinja2.Environment:
    """The plan templates' environment, with a filter per target language, built once per
    process so compiled templates are reused."""
    return templating.make_environment(
        {
            "prom_duration": burnrate.prom_duration,
            "nginx_rate": ratelimits.nginx_rate,
            # One escape per target language (scalectl.plan.escape); plan strings go
            # through them.
            "json": escape.json_value,
            "yaml_str": escape.yaml_str,
            "promql_label": escape.promql_label,
            "go_text": escape.go_template_text,
            "mib": lambda b: f"{round(b / 2**20)}Mi",
            "g": lambda v: f"{v:g}",
        }
    )


def render(loaded: LoadedPlan, sizing: Sizing) -> Files:
    """Every config file of the sized plan, by relative path, plus sizing.json; sorted, the same
    bytes for the same plan. Raises ScalectlError when a template fails (a bug in scalectl,
    not the input)."""
    import jinja2

    ctx = context.build(loaded, sizing)
    env = environment()
    files: Files = {}
    for target in TARGETS:
        if not target.when(ctx):
            continue
        items: list[Any]
        if target.each == "service":
            items = ctx["services"]
        elif target.each == "worker":
            items = ctx["workers"]
        else:
            items = [None]
        for item in items:
            local = dict(ctx)
            path = target.path
            if item is not None:
                local[target.each] = item
                path = path.format(name=item.name)
            try:
                text = env.get_template(target.template).render(local)
            except jinja2.TemplateError as exc:
                # A template bug, not the user's input: report it as internal.
                raise ScalectlError(f"template {target.template}: {exc}") from exc
            files[path] = text.encode("utf-8")
    files["sizing.json"] = (json.dumps(sizing.to_json(), indent=2) + "\n").encode()
    return dict(sorted(files.items()))
