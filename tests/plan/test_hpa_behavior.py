"""HPA scaling behaviour per service (`services.<name>.autoscaling.behavior`, issue 14
"HPA behavior"): the Jobsprint example rendered and validated, defaults unchanged, and the
autoscaling/v2 bounds enforced."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from scalectl.files import write_tree
from scalectl.plan.validate import run_checks
from tests.helpers.input_files import problems
from tests.helpers.minimal_plan import FIRST_ADDED_LINE, MINIMAL, render, with_api

# Jobsprint: scale up by 100% per 30 s or 2 pods, whichever is more; down by 50% per 60 s.
JOBSPRINT = """\
    autoscaling:
      behavior:
        scale_up:
          select_policy: Max
          policies:
            - {type: Percent, value: 100, period_seconds: 30}
            - {type: Pods, value: 2, period_seconds: 30}
        scale_down:
          stabilization_window_seconds: 120
          policies:
            - {type: Percent, value: 50, period_seconds: 60}
"""


def behavior(files: dict[str, bytes]) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(files["kubernetes/api.yaml"]) if d]
    [hpa] = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    return dict(hpa["spec"]["behavior"])


def test_the_jobsprint_policies_reach_the_hpa(tmp_path: Path) -> None:
    found = behavior(render(tmp_path, with_api(JOBSPRINT)))
    assert found["scaleUp"] == {
        "stabilizationWindowSeconds": 0,  # autoscaling.scale_up_stabilization_seconds
        "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 30},
            {"type": "Pods", "value": 2, "periodSeconds": 30},
        ],
        "selectPolicy": "Max",
    }
    assert found["scaleDown"] == {
        "stabilizationWindowSeconds": 120,
        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
    }


def test_defaults_are_the_documented_behaviour(tmp_path: Path) -> None:
    found = behavior(render(tmp_path, MINIMAL))
    assert found["scaleUp"] == {
        "stabilizationWindowSeconds": 0,
        "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15},
            {"type": "Pods", "value": 4, "periodSeconds": 15},
        ],
        "selectPolicy": "Max",
    }
    assert found["scaleDown"] == {
        "stabilizationWindowSeconds": 300,
        "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
    }


def test_select_policy_alone_keeps_the_default_policies(tmp_path: Path) -> None:
    text = with_api(
        "    autoscaling:\n      behavior:\n        scale_down: {select_policy: Disabled}\n"
    )
    found = behavior(render(tmp_path, text))
    assert found["scaleDown"]["selectPolicy"] == "Disabled"
    assert found["scaleDown"]["policies"] == [{"type": "Percent", "value": 10, "periodSeconds": 60}]


def test_the_jobsprint_hpa_passes_kubernetes_validate(tmp_path: Path) -> None:
    root = tmp_path / "out"
    write_tree(root, render(tmp_path, with_api(JOBSPRINT)))
    manifest = root / "kubernetes" / "api.yaml"
    [result] = [
        r
        for r in run_checks(root, "1.30.0", {**os.environ, "CI": "true"})
        if r.tool == "kubernetes-validate" and r.target == str(manifest)
    ]
    assert result.status == "ok", result.detail


def test_policies_follow_the_autoscaling_v2_bounds(tmp_path: Path) -> None:
    text = with_api(
        "    autoscaling:\n      behavior:\n"
        "        scale_up:\n"
        "          select_policy: Fastest\n"
        "          policies:\n"
        "            - {type: Replicas, value: 0, period_seconds: 1801}\n"
        "        scale_down: {policies: []}\n"
    )
    line = FIRST_ADDED_LINE
    assert problems(tmp_path, text) == [
        f"{line + 3}:26 services.api.autoscaling.behavior.scale_up.select_policy: must be "
        "'Max', 'Min' or 'Disabled'",
        f"{line + 5}:22 services.api.autoscaling.behavior.scale_up.policies[0].type: must be "
        "'Pods' or 'Percent'",
        f"{line + 5}:39 services.api.autoscaling.behavior.scale_up.policies[0].value: must be "
        "greater than or equal to 1",
        f"{line + 5}:58 services.api.autoscaling.behavior.scale_up.policies[0].period_seconds: "
        "must be less than or equal to 1800",
        f"{line + 6}:32 services.api.autoscaling.behavior.scale_down.policies: list should "
        "have at least 1 item after validation, not 0",
    ]


def test_one_stabilization_window_per_direction(tmp_path: Path) -> None:
    text = with_api(
        "    autoscaling:\n"
        "      scale_down_stabilization_seconds: 60\n"
        "      behavior:\n"
        "        scale_down: {stabilization_window_seconds: 120}\n"
    )
    line = FIRST_ADDED_LINE
    assert problems(tmp_path, text) == [
        f"{line + 3}:52 services.api.autoscaling.behavior.scale_down."
        "stabilization_window_seconds: give this or "
        "autoscaling.scale_down_stabilization_seconds, not both"
    ]
