"""The SLO file's endpoint groups (`groups`, by glob or regex on "METHOD name") and custom
metrics (`metrics`, a scenario's `request` events of type METRIC), each read from a run's
results as one Endpoint that the gates judge like any other. A group by status or tag
counts only its requests, which the plugin recorded apart (child/filters.py)."""

from __future__ import annotations

from dataclasses import replace

from scalectl.loadtest.results import METRIC_REQUEST_TYPE, Endpoint, Latency, Results, sum_checks
from scalectl.loadtest.slo import GroupThresholds, group_scope

__all__ = ["group_endpoint", "group_scope", "metric_endpoint", "metric_key"]


def metric_key(name: str) -> str:
    """The endpoint key a custom metric is recorded under: `METRIC NAME`."""
    return f"{METRIC_REQUEST_TYPE} {name}"


def group_endpoint(name: str, group: GroupThresholds, results: Results) -> Endpoint | None:
    """The endpoints of `results` in `group`, counted together: requests, failures, errors
    and throughput summed, latency from their merged histograms (exact, not averaged).
    None when the group matches no endpoint."""
    from scalectl.loadtest import hdr

    members = [e for e in results.endpoints if group.matches(e.key)]
    if not members:
        return None
    scope = group_scope(name)
    if group.filtered:
        return _filtered(scope, results, members)
    merged = hdr.new()
    errors: dict[str, int] = {}
    for e in members:
        if e.hist is not None:
            merged.add(e.hist)
        for message, count in e.errors.items():
            errors[message] = errors.get(message, 0) + count
    return Endpoint(
        key=scope,
        method="",
        name=scope,
        requests=sum(e.requests for e in members),
        failures=sum(e.failures for e in members),
        errors=errors,
        latency=Latency.of(merged),
        rps=sum(e.rps for e in members),
        checks=sum_checks(e.checks for e in members),
    )


def _filtered(scope: str, results: Results, members: list[Endpoint]) -> Endpoint:
    """A group by status or tag: only its requests, as the plugin recorded them apart (none
    when no request of its endpoints matched); checks are its endpoints'."""
    counted = results.filtered.get(scope)
    if counted is None:
        counted = Endpoint(scope, "", scope, 0, 0, {}, Latency(0, *[None] * 6), 0.0)
    checks = sum_checks(e.checks for e in members)
    return replace(counted, key=scope, method="", name=scope, checks=checks)


def metric_endpoint(name: str, results: Results) -> Endpoint | None:
    """The custom metric `name` as recorded (its values in the latency fields, in the
    metric's own unit); None when the run never fired it."""
    key = metric_key(name)
    return next((e for e in results.endpoints if e.key == key), None)
