"""Golden files for every template, for every example plan and profile.

After a deliberate template change: pytest tests/plan/test_render.py --update-golden,
then review `git diff tests/golden`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from scalectl.plan import prepare, render_files
from tests.conftest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
CASES = [(p, prof) for p in sorted(EXAMPLES.glob("*.yaml")) for prof in ("production", "local")]


def rendered(example: Path, profile: str) -> dict[str, bytes]:
    return render_files(prepare(example, profile))


@pytest.mark.parametrize(("example", "profile"), CASES, ids=lambda v: getattr(v, "stem", v))
def test_matches_golden_files(example: Path, profile: str, request: pytest.FixtureRequest) -> None:
    files = rendered(example, profile)
    root = GOLDEN / example.stem / profile
    if request.config.getoption("--update-golden"):
        shutil.rmtree(root, ignore_errors=True)
        for rel, content in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
    on_disk = {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
    assert sorted(on_disk) == sorted(files), "files differ: run with --update-golden and review"
    for rel, content in files.items():
        assert content.decode() == on_disk[rel].decode(), f"{rel} differs from the golden file"


@pytest.mark.parametrize(("example", "profile"), CASES, ids=lambda v: getattr(v, "stem", v))
def test_outputs_parse(example: Path, profile: str) -> None:
    for rel, content in rendered(example, profile).items():
        if rel.endswith((".yaml", ".yml")):
            docs = [d for d in yaml.safe_load_all(content) if d is not None]
            assert docs, rel
        elif rel.endswith(".json"):
            json.loads(content)


def test_kubernetes_invariants() -> None:
    files = rendered(EXAMPLES / "multi-tier.yaml", "production")
    docs = {
        (d["kind"], d["metadata"]["name"]): d
        for d in yaml.safe_load_all(files["kubernetes/api.yaml"])
        if d
    }
    deployment = docs[("Deployment", "api")]
    hpa = docs[("HorizontalPodAutoscaler", "api")]
    pdb = docs[("PodDisruptionBudget", "api")]
    spec = deployment["spec"]
    assert "replicas" not in spec  # the HPA owns it
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "ghcr.io/acme/cv-api:2.3.1"
    probes = {k: container[k]["httpGet"]["path"] for k in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"] != probes["readinessProbe"]
    assert pod["terminationGracePeriodSeconds"] > 30  # the app's graceful timeout
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    assert {"scaleUp", "scaleDown"} <= set(hpa["spec"]["behavior"])
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_nginx_uses_the_chosen_algorithm_and_retries() -> None:
    small = rendered(EXAMPLES / "small.yaml", "production")["nginx/nginx.conf"].decode()
    multi = rendered(EXAMPLES / "multi-tier.yaml", "production")["nginx/nginx.conf"].decode()
    assert "least_conn;" not in small and "ip_hash;" not in small  # round_robin: the default
    assert "least_conn;" in multi
    assert "proxy_next_upstream error timeout http_502 http_504;" in multi
    assert "server_tokens off;" in multi
    assert "limit_req_zone $tier_premium_key zone=tier_premium:10m rate=200r/s;" in multi
    assert "location /admin/ {" in multi
