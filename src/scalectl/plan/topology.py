"""Where a plan's processes listen under a profile: the name, host and port of every service
instance, each worker's metrics port and the load balancer's address. Templates see it
through the context (scalectl.plan.context); `scalectl stack` starts its members from it."""

from __future__ import annotations

from dataclasses import dataclass

from scalectl.plan.appenv import WORKER_METRICS_PORT
from scalectl.plan.load import LoadedPlan
from scalectl.plan.sizing import Sizing

# On loopback each service owns a block of this many ports, so adding instances never
# collides; the workers' metrics ports follow the services' blocks.
PORTS_PER_SERVICE = 100


@dataclass(frozen=True)
class Instance:
    """One instance of a service: `<service>-<index>` at `host:port`."""

    service: str
    index: int  # 1-based
    host: str  # 127.0.0.1 or [::1] on loopback; the service's DNS name otherwise
    port: int

    @property
    def name(self) -> str:
        """The instance's name, `<service>-<index>` (as the stack names its members)."""
        return f"{self.service}-{self.index}"

    @property
    def address(self) -> str:
        """`host:port`, as an nginx upstream server entry."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ServiceTopology:
    """A service's instances, in order."""

    name: str
    instances: tuple[Instance, ...]


@dataclass(frozen=True)
class WorkerTopology:
    """A queue worker and the port its Prometheus exporter listens on."""

    name: str
    # Dramatiq's Prometheus exporter. In a container 9191; on loopback each worker gets a
    # port in the block after the services', so two local stacks never collide.
    metrics_port: int


@dataclass(frozen=True)
class Topology:
    """Every service's instances, every worker and the load balancer's listen address."""

    services: tuple[ServiceTopology, ...]
    workers: tuple[WorkerTopology, ...]
    listen: str  # host:port the load balancer listens on, as the profile gives it

    @property
    def listen_host(self) -> str:
        """The load balancer's host (an IPv6 address keeps its brackets)."""
        return self.listen.rsplit(":", 1)[0]

    @property
    def listen_port(self) -> int:
        """The load balancer's port."""
        return int(self.listen.rsplit(":", 1)[1])

    def instance(self, name: str) -> Instance | None:
        """The service instance called `name` (`<service>-<index>`), or None."""
        return next(
            (i for svc in self.services for i in svc.instances if i.name == name),
            None,
        )

    def worker(self, name: str) -> WorkerTopology | None:
        """The worker called `name` (as the plan names it), or None."""
        return next((w for w in self.workers if w.name == name), None)


def topology(loaded: LoadedPlan, sizing: Sizing) -> Topology:
    """Where everything of `loaded`'s plan listens under its profile. On a loopback profile
    instances get consecutive ports from `base_port` (`instances` per service, default the
    service's minimum replicas); otherwise one entry per service, its DNS name and port.
    Raises nothing the loaded plan and its sizing have not already been checked for."""
    plan, profile = loaded.plan, loaded.profile
    loopback = profile.upstreams == "loopback"
    services = []
    for index, (name, spec) in enumerate(plan.services.items()):
        if loopback:
            count = profile.instances or sizing.service(name).min_replicas
            first = profile.base_port + PORTS_PER_SERVICE * index
            host = "[::1]" if profile.listen.startswith("[") else "127.0.0.1"
            instances = tuple(Instance(name, i + 1, host, first + i) for i in range(count))
        else:
            instances = (Instance(name, 1, name, spec.port),)
        services.append(ServiceTopology(name, instances))
    workers_base = profile.base_port + PORTS_PER_SERVICE * len(plan.services)
    workers = tuple(
        WorkerTopology(name, workers_base + index if loopback else WORKER_METRICS_PORT)
        for index, name in enumerate(plan.workers)
    )
    return Topology(tuple(services), workers, profile.listen)
