"""Checks: one HTTP GET against one target, judged by its conditions; and the defaults.

Defaults (docs/health.md "Defaults"), the reference app's /health* endpoints and /metrics:
every app instance gets its liveness path (/health), its readiness path (/health/ready),
/health/comprehensive (every dependency and the host, as components) and /metrics; the
balancer its readiness path (through nginx to some instance); a bare URL the same four as
an instance; a URL with a path exactly that path. /metrics is judged by the request counter
of the plan's SLI for the instance's service (the reference app's without a plan).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scalectl.health.conditions import Condition, parse_condition, reads, uses_rates
from scalectl.health.sockets import scheme_of
from scalectl.health.targets import DEFAULT_SERIES, PlanFacts, RequestSeries, Target
from scalectl.health.vocabulary import Vocabulary

METRICS_PATH = "/metrics"
COMPREHENSIVE_PATH = "/health/comprehensive"
# Health and scrape traffic is not what the error-rate SLO is about; the startup polls of
# /health/ready (503 until the schema is migrated) would otherwise count as errors.
_NOT_PROBES = '!~"/health.*|/metrics"'


@dataclass(frozen=True)
class Check:
    """One GET of `url` on `target`, judged by `conditions`; `headers`, `timeout`,
    `rate_window` and `vocabulary` add to or override the run's options."""

    target: Target
    name: str  # the path for default checks, the endpoint's name from a config
    url: str
    conditions: tuple[Condition, ...]
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float | None = None  # None: the run's --check-timeout
    rate_window: float | None = None  # None: the run's --rate-window
    vocabulary: Vocabulary | None = None  # None: the run's --vocabulary

    @property
    def key(self) -> tuple[str, str]:
        """(target name, URL): how rows, trackers and earlier scrapes find the check."""
        return (self.target.name, self.url)

    @property
    def needs_certificate(self) -> bool:
        """An https:// check whose conditions read [CERTIFICATE_EXPIRATION]."""
        return scheme_of(self.url) == "https" and any(
            reads(c, "CERTIFICATE_EXPIRATION") for c in self.conditions
        )

    @property
    def needs_two_scrapes(self) -> bool:
        """rate() or increase() in a condition: the URL is scraped twice, a window apart."""
        return any(uses_rates(c) for c in self.conditions)


def health_conditions() -> tuple[Condition, ...]:
    """The default conditions of a /health* path: a 200."""
    # A 200 is enough: a health+json body's own status (warn, fail) is judged as well, and
    # warn is healthy unless --strict, so host pressure in /health/comprehensive (CPU,
    # event-loop lag, memory: warn only) cannot fail a default run on a busy machine.
    return (parse_condition("[STATUS] == 200"),)


def metrics_conditions(
    error_rate: float, series: RequestSeries | None = DEFAULT_SERIES
) -> tuple[Condition, ...]:
    """200, and the share of failed requests (by the SLI's counter, status label and error
    regex) since the process started at or below the plan's error-rate SLO (counters only
    grow; see docs/health.md). Only the 200 for a raw-PromQL SLI (`series` None): a page
    cannot evaluate PromQL."""
    ok = parse_condition("[STATUS] == 200")
    if series is None:
        return (ok,)
    # The plan validated these names and the regex (no quotes or backslashes).
    name, route = series.requests, f"{series.route_label}{_NOT_PROBES}"
    failing = f'{series.status_label}=~"{series.error_status}"'
    ratio = f"[METRIC].{name}{{{failing},{route}}} / [METRIC].{name}{{{route}}} <= {error_rate:g}"
    return (ok, parse_condition(ratio))


# Endpoints below HTTP (docs/health.md "TCP, TLS and DNS"): connected, a certificate good
# for two more days (Gatus's example), a name that resolves.
SOCKET_DEFAULTS = {
    "tcp": ("[CONNECTED] == true",),
    "tls": ("[CONNECTED] == true", "[CERTIFICATE_EXPIRATION] > 48h"),
    "dns": ("[DNS_RCODE] == NOERROR",),
}


def default_conditions(
    path: str, facts: PlanFacts, service: str | None = None
) -> tuple[Condition, ...]:
    """The default conditions of `path` (or a config's URL): by scheme for tcp://, tls:// and
    dns://, the error-rate ratio of `service`'s SLI (None: the plan's first service's) for
    /metrics, a 200 for anything else."""
    if "://" in path and (scheme := scheme_of(path)) in SOCKET_DEFAULTS:
        return tuple(parse_condition(c) for c in SOCKET_DEFAULTS[scheme])
    if path.split("?", 1)[0].rstrip("/").endswith(METRICS_PATH):
        return metrics_conditions(facts.error_rate, facts.series_of(service))
    return health_conditions()


def default_paths(target: Target) -> list[str]:
    """The paths a target gets by default: the balancer its readiness path, a URL with a path
    that path, anything else liveness, readiness, /health/comprehensive and /metrics."""
    if target.kind == "balancer":
        return [target.readiness_path]
    if target.kind == "url" and target.path:
        return [target.path]
    paths = [target.liveness_path, target.readiness_path, COMPREHENSIVE_PATH, METRICS_PATH]
    return list(dict.fromkeys(paths))  # a plan may point two probes at one path


def default_checks(
    targets: Sequence[Target],
    facts: PlanFacts,
    conditions: Sequence[Condition] = (),
) -> list[Check]:
    """The default checks of each target; `conditions`, when given, replace the defaults."""
    checks = []
    for target in targets:
        for path in default_paths(target):
            chosen = tuple(conditions) or default_conditions(path, facts, target.service)
            checks.append(Check(target, path, target.base_url + path, chosen))
    return checks
