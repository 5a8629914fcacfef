"""What to probe: app instances and the balancer (from a running stack or a plan), or URLs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from scalectl.errors import InputError

Kind = Literal["instance", "balancer", "url"]
_T = TypeVar("_T")


@dataclass(frozen=True)
class Target:
    """Something to probe: an app instance, the balancer or a URL, with its base URL and the
    plan's probe paths."""

    name: str  # api-1, nginx, 127.0.0.1:8080
    base_url: str  # scheme://host:port, no trailing slash
    kind: Kind
    path: str = ""  # a URL argument's own path ("" or "/" means none was given)
    readiness_path: str = "/health/ready"  # the plan's services.<name>.health.readiness
    liveness_path: str = "/health"  # the plan's services.<name>.health.liveness
    service: str | None = None  # the plan's service of an instance


@dataclass(frozen=True)
class RequestSeries:
    """The request counter of a service's SLI (plan `services.<name>.sli`) as an instance's
    /metrics page shows it: its name, the status and route labels, the failing statuses."""

    requests: str = "http_requests_total"
    status_label: str = "status"
    route_label: str = "route"
    error_status: str = "5.."  # a regex on status_label


DEFAULT_SERIES = RequestSeries()


@dataclass(frozen=True)
class PlanFacts:
    """What the plan says about health: each service's probe paths and request counter, the
    error-rate SLO."""

    readiness: tuple[tuple[str, str], ...] = ()  # (service, path), in plan order
    error_rate: float = 0.01  # the default without a plan: 1% of requests may fail
    liveness: tuple[tuple[str, str], ...] = ()  # (service, path), in plan order
    # (service, series), in plan order; None for a raw-PromQL SLI, which a page cannot answer.
    series: tuple[tuple[str, RequestSeries | None], ...] = ()

    def readiness_of(self, service: str | None) -> str:
        """The readiness path of `service` (None: the balancer, which uses the first service's)."""
        return _path_of(self.readiness, service, "/health/ready")

    def liveness_of(self, service: str | None) -> str:
        """The liveness path of `service` (None: the first service's)."""
        return _path_of(self.liveness, service, "/health")

    def series_of(self, service: str | None) -> RequestSeries | None:
        """The request counter of `service` (None: the first service's; the reference app's
        without a plan); None when its SLI is raw PromQL."""
        return _path_of(self.series, service, DEFAULT_SERIES)

    def target(self, name: str, url: str, kind: Kind, service: str | None) -> Target:
        """A target of an instance of `service` (None: the balancer) with its paths."""
        return Target(
            name, url, kind, "", self.readiness_of(service), self.liveness_of(service), service
        )


def _path_of(paths: tuple[tuple[str, _T], ...], service: str | None, default: _T) -> _T:
    found = dict(paths)
    if service in found:
        return found[service]
    return paths[0][1] if paths else default


HTTP = ("http", "https")
ENDPOINT_SCHEMES = (*HTTP, "tcp", "tls", "dns")  # a config's `url`: docs/health.md


def check_url(text: str, schemes: tuple[str, ...] = HTTP) -> str | None:
    """Why `text` is not a URL health can probe, or None when it is. `schemes`: what is
    allowed; tcp:// and tls:// need a port, dns:// a name and nothing else."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        return f"bad URL '{text}': {exc}"
    if parts.scheme not in schemes or not parts.hostname:
        expected = ", ".join(f"{s}://" for s in schemes[:-1]) + f" or {schemes[-1]}://"
        return f"bad URL '{text}': expected {expected} and a host"
    if parts.scheme in ("tcp", "tls") and (port is None or parts.path or parts.query):
        return f"bad URL '{text}': expected {parts.scheme}://host:port, nothing after the port"
    if parts.scheme == "dns" and (port is not None or parts.path or parts.query):
        return f"bad URL '{text}': expected dns://name, the name to resolve and nothing else"
    return None


def from_url(text: str, schemes: tuple[str, ...] = HTTP) -> Target:
    """A target from a URL argument (or a config's `url`, with `schemes`); its path, when it
    has one, is the only one probed. Raises InputError for a URL health cannot probe."""
    problem = check_url(text, schemes)
    if problem:
        raise InputError(problem)
    parts = urlsplit(text)
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return Target(parts.netloc, base, "url", path if path not in ("", "/") else "")


def from_state(state_dir: Path) -> tuple[list[Target], PlanFacts, list[str]]:
    """The running stack's app instances and balancer, the facts of the plan it was
    started with, and notes. InputError when no stack runs there."""
    from scalectl.stack.state import load

    state = load(state_dir.absolute())
    if state is None:
        raise InputError(f"{state_dir}: no stack is running here (run `scalectl stack up`)")
    plan, notes = plan_facts(state.plan, state.profile)
    targets = []
    for member in state.members:
        if member.kind == "app" and member.url:
            service = member.name.rsplit("-", 1)[0]  # stack names instances <service>-<n>
            targets.append(plan.target(member.name, member.url.rstrip("/"), "instance", service))
    for member in state.members:
        if member.kind == "nginx" and member.url:
            targets.append(plan.target(member.name, member.url.rstrip("/"), "balancer", None))
    if not targets:
        raise InputError(f"{state_dir}: the stack has no app instances to probe")
    return targets, plan, notes


def from_plan(path: Path, profile: str) -> tuple[list[Target], PlanFacts]:
    """Every instance of every service in the plan's `profile`, and the balancer, with the
    plan's facts. Raises InputError when the plan is not valid."""
    from scalectl.plan import prepare
    from scalectl.plan.context import build

    prepared = prepare(path, profile)
    plan = facts(prepared.loaded.plan)
    ctx = build(prepared.loaded, prepared.sizing)
    targets = []
    for svc in ctx["services"]:
        for index, server in enumerate(svc.upstream_servers, start=1):
            url = f"http://{server}"
            targets.append(plan.target(f"{svc.name}-{index}", url, "instance", svc.name))
    host, port = prepared.loaded.profile.listen.rsplit(":", 1)
    # A balancer listening on every address is reached on loopback from here.
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)
    url = f"http://{host}:{port}"
    targets.append(plan.target("balancer", url, "balancer", None))
    return targets, plan


def plan_facts(path: str | None, profile: str = "local") -> tuple[PlanFacts, list[str]]:
    """The facts of the plan a stack was started with; defaults (and why) if unreadable."""
    if not path:
        return PlanFacts(), []
    from scalectl.plan.load import load_plan

    try:
        loaded = load_plan(Path(path), profile)
    except InputError as exc:
        return PlanFacts(), [f"default health settings: the stack's plan is unusable ({exc})"]
    return facts(loaded.plan), []


def facts(plan: object) -> PlanFacts:
    """The health facts of a loaded plan (a scalectl.plan.model.Plan): probe paths and the
    SLI's request counter per service, and the error-rate SLO."""
    from scalectl.plan.model import Plan

    assert isinstance(plan, Plan)
    readiness = tuple((name, svc.health.readiness) for name, svc in plan.services.items())
    liveness = tuple((name, svc.health.liveness) for name, svc in plan.services.items())
    series = tuple(
        (
            name,
            None
            if svc.sli.raw
            else RequestSeries(
                svc.sli.requests, svc.sli.status_label, svc.sli.route_label, svc.sli.error_status
            ),
        )
        for name, svc in plan.services.items()
    )
    return PlanFacts(readiness, plan.slo.error_rate, liveness, series)
