"""The capacity plan, version 1: typed, immutable, and the source of `scalectl plan schema`.

The top-level Plan and its deployment profiles; the sections it holds are in
scalectl.plan.workloads, .datastores, .loadbalancer and .slo, the value types they share in
scalectl.plan.fieldtypes. Field descriptions become docs/plan.md and the editor-facing JSON
Schema, so they are written for the person filling in the plan.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from scalectl.plan.datastores import Cache, Database
from scalectl.plan.fieldtypes import Name, Port
from scalectl.plan.loadbalancer import LoadBalancer
from scalectl.plan.patterns import ServerName
from scalectl.plan.slo import Alerting, Slo
from scalectl.plan.workloads import Service, Worker
from scalectl.strict import Strict


class Profile(Strict):
    """`profiles.<name>`: how the plan is deployed (loopback ports or DNS), where nginx listens,
    and overrides merged over the plan."""

    upstreams: Literal["loopback", "dns"] = Field(
        description="loopback: app instances on 127.0.0.1 ports (scalectl stack); "
        "dns: service names resolved by compose or Kubernetes."
    )
    listen: str = Field("0.0.0.0:80", pattern=r"^[0-9.]+:[0-9]+$|^\[[0-9a-f:]+\]:[0-9]+$")
    base_port: Port = Field(18000, description="loopback: first app instance port.")
    instances: int | None = Field(
        None,
        ge=1,
        le=64,
        description="loopback: app instances per service (default: min replicas).",
    )
    server_name: ServerName = "_"
    overrides: dict[str, object] = Field(
        default_factory=dict, description="A partial plan merged over the base plan."
    )


class Plan(Strict):
    """A capacity plan (version 1): services, workers, database, cache, load balancer, SLOs,
    alerting and profiles."""

    version: Literal[1] = Field(description="Plan format version; always 1 for now.")
    name: Name = Field(description="The application's name: a DNS label.")
    namespace: Name | None = Field(None, description="Kubernetes namespace; default: name.")
    services: dict[Name, Service] = Field(min_length=1, description="HTTP tiers by name.")
    workers: dict[Name, Worker] = Field(
        default_factory=dict, description="Background queue consumers by name."
    )
    database: Database | None = None
    cache: Cache | None = None
    load_balancer: LoadBalancer = LoadBalancer()
    slo: Slo = Field(description="Targets reused by loadtest gates and alert rules.")
    alerting: Alerting = Alerting()
    kubernetes_version: str = Field(
        "1.30.0", pattern=r"^1\.[0-9]+\.[0-9]+$", description="Manifests are validated against it."
    )
    profiles: dict[Name, Profile] = Field(
        default_factory=dict,
        description="Named variants; 'local' and 'production' exist even when not listed.",
    )

    @property
    def k8s_namespace(self) -> str:
        """The Kubernetes namespace: `namespace`, else the plan's name."""
        return self.namespace or self.name
