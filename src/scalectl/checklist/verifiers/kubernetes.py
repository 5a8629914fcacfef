"""`hpa` (auto-scaling rules exist, match the plan and validate) and `rollout-strategy`
(rolling updates that never drop capacity, readiness probes, time to drain)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scalectl.checklist.model import VerifierOutcome, failed, passed
from scalectl.checklist.verifiers.base import Context, Verifier
from scalectl.checklist.verifiers.rendered import (
    RenderedParams,
    first_lines,
    k8s_version,
    relative,
    rendered,
)
from scalectl.errors import CheckFailed


def manifests(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Each kubernetes/<name>.yaml's documents."""
    directory = root / "kubernetes"
    if not directory.is_dir():
        raise CheckFailed(f"{directory}: no Kubernetes manifests")
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        except yaml.YAMLError as exc:
            raise CheckFailed(f"{path}: malformed YAML", lines=first_lines(str(exc))) from None
        out[path.name] = docs
    return out


def find(docs: dict[str, list[dict[str, Any]]], kind: str, name: str) -> tuple[str, dict[str, Any]]:
    """The manifest of `kind` named `name` in `docs` (by file), with its file. Raises KeyError
    when there is none."""
    for file, items in docs.items():
        for doc in items:
            if doc.get("kind") == kind and (doc.get("metadata") or {}).get("name") == name:
                return file, doc
    raise KeyError(name)


def _metric(m: dict[str, Any]) -> str:
    kind = m.get("type", "?")
    spec = m.get(str(kind)[:1].lower() + str(kind)[1:], {}) or {}
    if kind == "Resource":
        target = spec.get("target", {})
        return f"{spec.get('name')} {target.get('averageUtilization', '?')}%"
    name = (spec.get("metric") or {}).get("name", "?")
    return f"{name} ({kind})"


class HpaParams(RenderedParams):
    """Parameters of the `hpa` verifier: where the configs come from, and the Kubernetes version
    to validate against."""

    k8s_version: str | None = None


def check_hpa(params: HpaParams, ctx: Context) -> VerifierOutcome:
    """The `hpa` item: an HPA per autoscaled service and worker, with the plan's bounds and
    metrics, valid for the Kubernetes version. Raises CheckFailed (or another ScalectlError),
    which fails the item, when the plan is missing or infeasible."""
    from scalectl.plan.validate import run_checks

    with rendered(params, ctx) as r:
        docs = manifests(r.root)
        plan = r.prepared.loaded.plan
        sizing = r.prepared.sizing
        expected: dict[str, tuple[int, int]] = {}
        for s in sizing.services:
            if plan.services[s.name].autoscaling.enabled:
                expected[s.name] = (s.min_replicas, s.max_replicas)
        for w in sizing.workers:
            expected[w.name] = (w.min_replicas, w.max_replicas)
        if not expected:
            return failed(f"{r.label}: the plan enables autoscaling for no service or worker")
        lines, problems, files = [], [], set()
        for name, (low, high) in expected.items():
            try:
                file, hpa = find(docs, "HorizontalPodAutoscaler", name)
            except KeyError:
                problems.append(f"{name}: no HorizontalPodAutoscaler in kubernetes/")
                continue
            files.add(file)
            spec = hpa.get("spec") or {}
            got = (spec.get("minReplicas"), spec.get("maxReplicas"))
            target = (spec.get("scaleTargetRef") or {}).get("name")
            metrics = ", ".join(_metric(m) for m in spec.get("metrics") or []) or "no metrics"
            lines.append(
                f"{name}: {hpa.get('apiVersion')} HPA in {file}, "
                f"{got[0]}-{got[1]} replicas on {metrics}"
            )
            if got != (low, high):
                problems.append(f"{name}: replicas {got[0]}-{got[1]}, the plan sizes {low}-{high}")
            if target != name:
                problems.append(f"{name}: scaleTargetRef is {target!r}, expected {name!r}")
            if not spec.get("metrics"):
                problems.append(f"{name}: the HPA has no metrics to scale on")
        version = k8s_version(r, params.k8s_version)
        checks = run_checks(
            r.root,
            version,
            ctx.environ,
            select=lambda tool, path: tool == "kubernetes-validate" and path.name in files,
        )
        for c in checks:
            lines.append(
                f"kubernetes-validate {version} --strict {relative(c.target, r.root)}: {c.status}"
            )
            if c.status != "ok":
                problems.extend(f"  {line}" for line in first_lines(c.detail))
                problems.append(f"{relative(c.target, r.root)} does not validate ({c.status})")
    return passed(*lines) if not problems else failed(*lines, *problems)


HPA = Verifier(
    "hpa",
    HpaParams,
    check_hpa,
    "a HorizontalPodAutoscaler per autoscaled service and worker, with the plan's replica "
    "bounds and metrics, valid for the plan's Kubernetes version (kubernetes-validate --strict)",
)


class RolloutParams(RenderedParams):
    """Parameters of the `rollout-strategy` verifier: where the configs come from, and the most
    pods a rollout may take down."""

    max_unavailable: int = 0  # the most pods a rollout may take down at once


def check_rollout(params: RolloutParams, ctx: Context) -> VerifierOutcome:
    """The `rollout-strategy` item: each Deployment rolls out without dropping capacity, has
    readiness probes, a grace period covering its drain, and its PodDisruptionBudget. Raises
    CheckFailed (or another ScalectlError), which fails the item, when the plan is missing or
    infeasible."""
    with rendered(params, ctx) as r:
        docs = manifests(r.root)
        plan = r.prepared.loaded.plan
        lines: list[str] = []
        problems: list[str] = []
        drains = {name: s.graceful_shutdown_seconds for name, s in plan.services.items()}
        drains |= {name: w.graceful_shutdown_seconds for name, w in plan.workers.items()}
        for name, drain in drains.items():
            try:
                file, dep = find(docs, "Deployment", name)
            except KeyError:
                problems.append(f"{name}: no Deployment in kubernetes/")
                continue
            spec = dep.get("spec") or {}
            strategy = spec.get("strategy") or {}
            kind = strategy.get("type", "RollingUpdate")  # Kubernetes' default
            rolling = strategy.get("rollingUpdate") or {}
            unavailable = rolling.get("maxUnavailable", "25%")
            pod = (spec.get("template") or {}).get("spec") or {}
            grace = pod.get("terminationGracePeriodSeconds", 30)
            containers = pod.get("containers") or []
            unready = [c.get("name", "?") for c in containers if not c.get("readinessProbe")]
            lines.append(
                f"{name} ({file}): {kind}, maxUnavailable {unavailable}, maxSurge "
                f"{rolling.get('maxSurge', '25%')}; readiness probes on "
                f"{len(containers) - len(unready)} of {len(containers)} containers; "
                f"terminationGracePeriodSeconds {grace} for a {drain}s drain"
            )
            if kind != "RollingUpdate":
                problems.append(f"{name}: strategy {kind} stops every pod before starting new ones")
            elif not isinstance(unavailable, int) or unavailable > params.max_unavailable:
                allowed = params.max_unavailable
                problems.append(f"{name}: maxUnavailable {unavailable}, at most {allowed} allowed")
            if unready:
                problems.append(f"{name}: no readinessProbe on {', '.join(unready)}")
            if not isinstance(grace, int) or grace < drain:
                problems.append(
                    f"{name}: terminationGracePeriodSeconds {grace} < the {drain}s drain: "
                    "the kubelet would SIGKILL in-flight work"
                )
            if name in plan.services and plan.services[name].pdb:
                try:
                    find(docs, "PodDisruptionBudget", name)
                except KeyError:
                    problems.append(f"{name}: the plan asks for a PodDisruptionBudget; none found")
    return passed(*lines) if not problems else failed(*lines, *problems)


ROLLOUT = Verifier(
    "rollout-strategy",
    RolloutParams,
    check_rollout,
    "each Deployment rolls out without dropping capacity (RollingUpdate, maxUnavailable), "
    "has readiness probes, a grace period covering its drain, and its PodDisruptionBudget",
)
