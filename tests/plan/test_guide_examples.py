"""Every example plan (the guides' architectures of issue 14 included) loads, renders in
both profiles and passes `scalectl plan --check` with every validator required (CI=true);
the guides' numbers from the issue reach the rendered files, every other number says it
was invented, and the guides' health configs and ClipSync's checklist load."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from scalectl.checklist.load import load_checklist
from scalectl.health.config import load_config
from scalectl.plan import prepare, render_files
from scalectl.plan.schema import json_schema
from tests.conftest import EXAMPLES, Result

Cli = Callable[..., Result]

GUIDES = EXAMPLES / "guides"
GUIDE_NAMES = ("easycv", "jobsprint", "ai-resume-builder", "corp-astro", "clipsync")
HEALTH_CONFIGS = sorted(GUIDES.glob("*-health.yaml"))
PLANS = sorted(EXAMPLES.glob("*.yaml")) + [GUIDES / f"{name}.yaml" for name in GUIDE_NAMES]


def plan_id(path: Path) -> str:
    return str(path.relative_to(EXAMPLES))


def test_the_guides_directory_holds_only_what_this_test_knows() -> None:
    known = {f"{n}.yaml" for n in GUIDE_NAMES} | {"clipsync-checklist.yaml"}
    known |= {p.name for p in HEALTH_CONFIGS}
    assert {p.name for p in GUIDES.iterdir()} == known


@pytest.mark.parametrize("plan", PLANS, ids=plan_id)
def test_example_passes_check_with_every_validator(cli: Cli, tmp_path: Path, plan: Path) -> None:
    # The local profile renders too (the stack's); --check runs on the production one.
    assert render_files(prepare(plan, "local"))
    result = cli("plan", plan, "-o", tmp_path, "--check", "--json", env={"CI": "true"})
    payload = json.loads(result.stdout)
    checks = payload["results"][0]["checks"]
    assert result.code == 0, [c for c in checks if c["status"] != "ok"] or result.stderr
    assert {c["tool"] for c in checks} >= {
        "nginx -t",
        "promtool test rules",
        "amtool check-config",
        "kubernetes-validate",
    }
    jsonschema.validate(yaml.safe_load(plan.read_text()), json_schema())


# A line holds a number the plan chose when its value (comments and its key aside) has a
# digit; names, images, queries and selectors are text that happens to hold digits.
_KEY = re.compile(r"^\s*(- )?(\"[^\"]*\"|[\w-]+):")
_TEXT_KEYS = re.compile(
    r"^\s*(version|image|name|server_name|selector|error_query|total_query|good_query|"
    r"valid_query|error_status|command|kubernetes_version|env)\b|^\s*\"(GET|POST) "
)


@pytest.mark.parametrize("name", GUIDE_NAMES)
def test_every_number_in_a_guide_plan_says_where_it_comes_from(name: str) -> None:
    text = (GUIDES / f"{name}.yaml").read_text()
    header = text.split("\nversion:")[0]
    assert "is not in this repository" in header
    assert "issue 14" in header
    unexplained = []
    for number, line in enumerate(text.splitlines(), 1):
        value, _, comment = line.partition("#")
        if line.lstrip().startswith("#") or _TEXT_KEYS.match(value) or "_query:" in value:
            continue
        if not re.search(r"\d", _KEY.sub("", value, count=1)):
            continue
        if "invented:" not in comment and "issue 14" not in comment:
            unexplained.append(f"{number}: {line.strip()}")
    assert not unexplained, "numbers without 'invented: <why>' or 'issue 14':\n" + "\n".join(
        unexplained
    )


def rendered_yaml(plan: str, path: str) -> list[dict[str, Any]]:
    files = render_files(prepare(GUIDES / f"{plan}.yaml", "production"))
    return [d for d in yaml.safe_load_all(files[path]) if d]


def test_the_issues_numbers_reach_the_rendered_files() -> None:
    # Jobsprint: up by 100% per 30 s or 2 pods, down by 50% per 60 s.
    [hpa] = [
        d
        for d in rendered_yaml("jobsprint", "kubernetes/api.yaml")
        if d["kind"] == "HorizontalPodAutoscaler"
    ]
    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleUp"]["policies"] == [
        {"type": "Percent", "value": 100, "periodSeconds": 30},
        {"type": "Pods", "value": 2, "periodSeconds": 30},
    ]
    assert behavior["scaleDown"]["policies"] == [
        {"type": "Percent", "value": 50, "periodSeconds": 60}
    ]
    # Jobsprint's search API (db_time_ms: 0) gets no database.
    [search] = [
        d for d in rendered_yaml("jobsprint", "kubernetes/search.yaml") if d["kind"] == "Deployment"
    ]
    env = search["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "DATABASE_URL" not in {e["name"] for e in env}
    # EasyCV's alerts wait 2 minutes.
    [alerts] = rendered_yaml("easycv", "prometheus/alerts.rules.yml")
    rules = {r["alert"]: r for g in alerts["groups"] for r in g["rules"]}
    for alert in ("ApiDown", "ApiHighErrorRate", "ApiLatencyP95High", "ReviewQueueDepthHigh"):
        assert rules[alert]["for"] == "2m", alert
    # ClipSync's HPA asks for the request rate of its SLI's counter.
    [hpa] = [
        d
        for d in rendered_yaml("clipsync", "kubernetes/api.yaml")
        if d["kind"] == "HorizontalPodAutoscaler"
    ]
    names = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert names == ["http_request_duration_seconds_count_per_second"]
    # ClipSync's latency objective, with requests counted by the histogram's _count.
    [slo] = rendered_yaml("clipsync", "prometheus/slo.rules.yml")
    assert "ApiLatencyBudgetBurn" in {r.get("alert") for g in slo["groups"] for r in g["rules"]}


@pytest.mark.parametrize("config", HEALTH_CONFIGS, ids=lambda p: p.name)
def test_guide_health_configs_load(config: Path) -> None:
    loaded = load_config(config)
    assert loaded.endpoints
    assert loaded.vocabulary is not None
    assert {"healthy"} <= {word for word, _ in loaded.vocabulary.words}


def test_the_clipsync_checklist_loads_with_its_ten_items(cli: Cli) -> None:
    path = GUIDES / "clipsync-checklist.yaml"
    assert "reconstructed" in path.read_text().split("\nversion:")[0]
    checklist = load_checklist(str(path))
    assert len(checklist.items) == 10
    listed = cli("checklist", "list", path)
    assert listed.code == 0, listed.stderr
    assert "a person" in listed.stdout
