"""hpa and rollout-strategy against the rendered Kubernetes manifests."""

from __future__ import annotations

from pathlib import Path

from scalectl.checklist.verifiers import Context
from tests.checklist.conftest import check
from tests.checklist.verifiers.conftest import PLAN


def test_hpas_match_the_plan_and_validate(rendered: Path) -> None:
    result = check(f"{{kind: hpa, dir: {rendered}}}", Context(plan=PLAN))
    assert result.status == "pass", result.evidence
    assert result.evidence == (
        "api: autoscaling/v2 HPA in api.yaml, 2-8 replicas on cpu 70%",
        "jobs: autoscaling/v2 HPA in jobs.yaml, 1-6 replicas on queue_depth (External)",
        "kubernetes-validate 1.30.0 --strict kubernetes/api.yaml: ok",
        "kubernetes-validate 1.30.0 --strict kubernetes/jobs.yaml: ok",
    )


def test_a_missing_or_invalid_hpa_fails(rendered: Path) -> None:
    api = rendered / "kubernetes" / "api.yaml"
    api.write_text(api.read_text().replace("kind: HorizontalPodAutoscaler", "kind: Removed", 1))
    jobs = rendered / "kubernetes" / "jobs.yaml"
    jobs.write_text(jobs.read_text().replace("maxReplicas: 6", "maxReplicas: 6\n  maxReplica: 7"))
    result = check(f"{{kind: hpa, dir: {rendered}}}", Context(plan=PLAN))
    assert result.status == "fail"
    assert "api: no HorizontalPodAutoscaler in kubernetes/" in result.evidence
    assert "kubernetes-validate 1.30.0 --strict kubernetes/jobs.yaml: failed" in result.evidence
    assert result.evidence[-1] == "kubernetes/jobs.yaml does not validate (failed)"


def test_rolling_updates_keep_capacity(rendered: Path) -> None:
    result = check(f"{{kind: rollout-strategy, dir: {rendered}}}", Context(plan=PLAN))
    assert result.status == "pass", result.evidence
    assert result.evidence[0] == (
        "api (api.yaml): RollingUpdate, maxUnavailable 0, maxSurge 25%; readiness probes on "
        "1 of 1 containers; terminationGracePeriodSeconds 30 for a 20s drain"
    )


def test_a_recreate_strategy_and_a_short_grace_period_fail(rendered: Path) -> None:
    api = rendered / "kubernetes" / "api.yaml"
    text = api.read_text().replace("type: RollingUpdate", "type: Recreate", 1)
    api.write_text(
        text.replace("terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 5")
    )
    result = check(f"{{kind: rollout-strategy, dir: {rendered}}}", Context(plan=PLAN))
    assert result.status == "fail"
    assert result.evidence[-2:] == (
        "api: strategy Recreate stops every pod before starting new ones",
        "api: terminationGracePeriodSeconds 5 < the 20s drain: the kubelet would SIGKILL "
        "in-flight work",
    )
