"""The paths the rendered nginx answers only for `load_balancer.internal_networks`.

Issue 11: /metrics, /health/comprehensive, /docs and /openapi.json were public through
nginx, and /health/comprehensive showed hosts, ports and the database user. Every service
gets one regex location below its route for these paths; the liveness and startup probe
paths stay public (uptime checks use them), through exact locations that nginx prefers
over any regex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scalectl.plan.workloads import Service

# Below a service's route: operational endpoints and generated API docs (FastAPI serves
# /docs, /docs/oauth2-redirect, /redoc and /openapi.json), and every /health/ check.
_PAGES = ("metrics", "openapi.json", "docs", "redoc")


@dataclass(frozen=True)
class InternalPaths:
    """What the nginx template renders inside one service's location."""

    regex: str  # a PCRE for `location ~`, anchored at the route
    public: tuple[str, ...]  # exact paths the regex matches that stay public


def _base(route: str) -> str:
    return route if route.endswith("/") else route + "/"


def _literal(text: str) -> str:
    # Routes are [A-Za-z0-9/_.-] (model.HttpPath): "." is the one regex metacharacter.
    return text.replace(".", r"\.")


def internal_paths(service: Service) -> InternalPaths:
    """The internal-only regex below `service.route`, and the probe paths exempt from it."""
    base = _base(service.route)
    pages = "|".join(_literal(page) for page in _PAGES)
    regex = f"^{_literal(base)}(?:(?:{pages})(?:/|$)|health/)"
    compiled = re.compile(regex)
    probes = sorted({service.health.liveness, service.health.startup})
    # A nested location must lie inside its parent's prefix (nginx -t refuses it otherwise).
    public = tuple(
        path for path in probes if path.startswith(service.route) and compiled.match(path)
    )
    return InternalPaths(regex, public)
