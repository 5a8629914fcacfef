"""The PromQL built from a service's SLI (scalectl.plan.sli): one method per query, used by
the alert and SLO rules, their promtool tests, the dashboard and the checklist.

Plan strings reach these queries validated (names by grammar, values without quotes or
backslashes) and are still escaped as PromQL strings here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from scalectl.plan.escape import promql_label
from scalectl.plan.sli import (
    DEFAULT_DURATION,
    DEFAULT_ERROR_STATUS,
    DEFAULT_REQUESTS,
    WINDOW,
    Matcher,
    Sli,
    parse_selector,
)

# The reference app's latency buckets (reference_app/refapp/metrics.py), in seconds: the
# promtool tests' histogram series when the plan gives no sli.buckets.
REFERENCE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 0.75, 0.8, 1, 1.2, 2.5, 5, 10)

# Status values the promtool tests give a succeeding and a failing request: the first
# candidate the error regex refuses, and the first it accepts.
_OK_STATUSES = ("200", "204", "ok", "OK", "success")
_ERROR_STATUSES = ("503", "500", "502", "504", "429", "error", "ERROR", "failure")
_LITERAL = re.compile(r"[A-Za-z0-9_.:/ -]+", re.ASCII)


def _matchers(matchers: Sequence[Matcher]) -> str:
    return ", ".join(f'{m.label}{m.op}"{promql_label(m.value)}"' for m in matchers)


@dataclass(frozen=True)
class SliQueries:
    """A service's SLI as the queries and series names the rendered files use."""

    service: str
    sli: Sli

    @property
    def matchers(self) -> tuple[Matcher, ...]:
        """The selector's matchers; job="<service>" by default."""
        if self.sli.selector is None:
            return (Matcher("job", "=", self.service),)
        return parse_selector(self.sli.selector)

    @property
    def selector(self) -> str:
        """The selector's matchers as PromQL, without braces: `job="api"`."""
        return _matchers(self.matchers)

    @property
    def custom_selector(self) -> bool:
        """Whether the plan sets a selector other than job="<service>"."""
        return self.matchers != (Matcher("job", "=", self.service),)

    @property
    def raw(self) -> bool:
        """Whether errors and totals come from the plan's raw PromQL."""
        return self.sli.raw

    @property
    def default_errors(self) -> bool:
        """Whether a failed request is one with a 5xx status (the text annotations use)."""
        return not self.raw and self.sli.error_status == DEFAULT_ERROR_STATUS

    def series(self, metric: str, extra: str = "") -> str:
        """`metric{<selector><extra>}`; `extra` starts with ", " when given."""
        return f"{metric}{{{self.selector}{extra}}}"

    @property
    def requests(self) -> str:
        """The request counter's name."""
        return self.sli.requests

    @property
    def bucket(self) -> str:
        """The latency histogram's bucket series name."""
        return f"{self.sli.duration}_bucket"

    @property
    def count(self) -> str:
        """The latency histogram's count series name."""
        return f"{self.sli.duration}_count"

    @property
    def counted_by_histogram(self) -> bool:
        """Whether the request counter is the histogram's own `_count` (express-prom-bundle,
        prom-client): its series then carry the status label and hold every request."""
        return not self.raw and self.sli.requests == self.count

    @property
    def status_label(self) -> str:
        """The label holding the status code."""
        return self.sli.status_label

    @property
    def error_matcher(self) -> str:
        """`status=~"5.."`: the matcher of failed requests."""
        return f'{self.sli.status_label}=~"{promql_label(self.sli.error_status)}"'

    def errors(self, window: str) -> str:
        """Failed requests per second over `window`, summed."""
        if self.sli.error_query is not None:
            return f"sum({self.sli.error_query.replace(WINDOW, window)})"
        return f"sum(rate({self.series(self.requests, ', ' + self.error_matcher)}[{window}]))"

    def total(self, window: str) -> str:
        """All requests per second over `window`, summed."""
        if self.sli.total_query is not None:
            return f"sum({self.sli.total_query.replace(WINDOW, window)})"
        return f"sum(rate({self.series(self.requests)}[{window}]))"

    def error_ratio(self, window: str, indent: int) -> str:
        """The failed fraction over `window` (0 without errors, nothing without requests), on
        two lines; the second is indented `indent` spaces."""
        return f"({self.errors(window)} or vector(0))\n{' ' * indent}  / ({self.total(window)} > 0)"

    def endpoint_matchers(self, method: str, route: str) -> str:
        """`, method="GET", route="/x"`: an endpoint's series after the selector."""
        text = f', {self.sli.method_label}="{promql_label(method)}"' if method else ""
        return f'{text}, {self.sli.route_label}="{promql_label(route)}"'

    def endpoint_by(self, method: bool) -> str:
        """The grouping labels of an endpoint: `method, route`."""
        return f"{self.sli.method_label}, {self.sli.route_label}" if method else self.route_label

    @property
    def route_label(self) -> str:
        """The label holding the route."""
        return self.sli.route_label

    @property
    def method_label(self) -> str:
        """The label holding the method."""
        return self.sli.method_label

    def latency_quantile(self, q: str, window: str, by: str = "", extra: str = "") -> str:
        """histogram_quantile(q) of the service's latency over `window`; `by` adds grouping
        labels after le, `extra` matchers after the selector."""
        grouped = f"le, {by}" if by else "le"
        bucket = self.series(self.bucket, extra)
        return f"histogram_quantile({q}, sum by ({grouped}) (rate({bucket}[{window}])))"

    # --- latency objective ---------------------------------------------------------------

    @property
    def raw_latency(self) -> bool:
        """Whether fast and valid requests come from good_query and valid_query."""
        return self.sli.good_query is not None

    def slow_ratio(self, window: str, threshold_seconds: float, indent: int) -> str:
        """The fraction of requests slower than the threshold over `window` (nothing without
        requests), on two lines; the second is indented `indent` spaces."""
        if self.sli.good_query is not None and self.sli.valid_query is not None:
            valid = f"sum({self.sli.valid_query.replace(WINDOW, window)})"
            good = f"sum({self.sli.good_query.replace(WINDOW, window)})"
        else:
            valid = f"sum(rate({self.series(self.count)}[{window}]))"
            le = f", {le_matcher(threshold_seconds)}"
            good = f"sum(rate({self.series(self.bucket, le)}[{window}]))"
        return f"({valid} - {good})\n{' ' * indent}  / ({valid} > 0)"

    # --- promtool test series -----------------------------------------------------------

    @property
    def test_labels(self) -> dict[str, str] | None:
        """Labels a test series needs to match the selector; None when a matcher's regex has
        no literal alternative to use."""
        labels: dict[str, str] = {}
        for m in self.matchers:
            if m.op == "=":
                labels[m.label] = m.value
            elif m.op == "=~":
                first = m.value.split("|", 1)[0]
                if not _LITERAL.fullmatch(first):
                    return None
                labels[m.label] = first
        # A negative matcher is met by a missing label, unless it refuses the empty value.
        for m in self.matchers:
            if m.op in ("!=", "!~") and not _refuses(m, labels.get(m.label, "")):
                return None
        return labels

    def test_status(self, failing: bool) -> str | None:
        """A status value the error regex accepts (`failing`) or refuses; None if none fits."""
        pattern = re.compile(self.sli.error_status)
        for candidate in _ERROR_STATUSES if failing else _OK_STATUSES:
            if bool(pattern.fullmatch(candidate)) == failing:
                return candidate
        return None

    def test_series(self, metric: str, **labels: str) -> str | None:
        """A promtool input series: the selector's labels, then `labels` (renamed from
        method/route/status to the SLI's label names); None when none can be made."""
        base = self.test_labels
        if base is None:
            return None
        names = {
            "method": self.sli.method_label,
            "route": self.sli.route_label,
            "status": self.sli.status_label,
        }
        merged = dict(base)
        for key, value in labels.items():
            merged[names.get(key, key)] = value
        inner = ", ".join(f'{k}="{promql_label(v)}"' for k, v in merged.items())
        return f"{metric}{{{inner}}}"

    @property
    def testable_errors(self) -> bool:
        """Whether the promtool tests can make request series this SLI counts."""
        return (
            not self.raw
            and self.test_labels is not None
            and self.test_status(failing=True) is not None
            and self.test_status(failing=False) is not None
        )


def bound(seconds: float) -> str:
    """A bucket bound as Go's client libraries write `le`: 0.3, 1, 2.5."""
    return str(int(seconds)) if seconds == int(seconds) else repr(seconds)


def le_matcher(seconds: float) -> str:
    """The matcher of the bucket at `seconds`. A whole number matches both "1" (Go clients)
    and "1.0" (Python clients, and Prometheus 3, which normalizes le)."""
    text = bound(seconds)
    if "." in text or "e" in text:
        return f'le="{text}"'
    return f'le=~"{text}|{text}.0"'


def test_buckets(sli: Sli, threshold_seconds: float | None) -> list[str]:
    """The `le` values of the promtool tests' histogram series: sli.buckets, else the
    reference app's, with the latency threshold added when missing, then +Inf."""
    bounds = [float(b) for b in (sli.buckets or REFERENCE_BUCKETS)]
    if threshold_seconds is not None and not any(
        abs(b - threshold_seconds) < 1e-12 for b in bounds
    ):
        bounds.append(threshold_seconds)
    return [*(bound(b) for b in sorted(bounds)), "+Inf"]


def _refuses(matcher: Matcher, value: str) -> bool:
    if matcher.op == "!=":
        return value != matcher.value
    return not re.fullmatch(matcher.value, value)


def is_default(q: SliQueries) -> bool:
    """Whether `q` is the reference app's SLI, as every service had before the plan could set
    one."""
    return (
        not q.raw
        and not q.custom_selector
        and q.sli.requests == DEFAULT_REQUESTS
        and q.sli.duration == DEFAULT_DURATION
        and q.sli.status_label == "status"
        and q.sli.error_status == DEFAULT_ERROR_STATUS
    )


# --- dashboard ----------------------------------------------------------------------------

# The dashboard's service variable and rate window, as Grafana substitutes them.
DASHBOARD_SERVICE = 'job=~"$service"'
DASHBOARD_RATE = "$__rate_interval"


def _grouped(
    services: Sequence[SliQueries], key: str
) -> tuple[dict[tuple[str, ...], list[SliQueries]], list[SliQueries]]:
    """Services selected by job="<service>" grouped by the series `key` names (requests or
    latency), and the others, queried one by one."""
    groups: dict[tuple[str, ...], list[SliQueries]] = {}
    single = []
    for q in services:
        if q.custom_selector or (key == "requests" and q.raw):
            single.append(q)
            continue
        shape = (
            (q.requests, q.status_label, q.sli.error_status) if key == "requests" else (q.bucket,)
        )
        groups.setdefault(shape, []).append(q)
    return groups, single


def _jobs(group: list[SliQueries], everyone: int) -> str:
    # The variable alone when the group is every service: the dashboard's query as it was
    # before services could differ.
    if len(group) == everyone:
        return DASHBOARD_SERVICE
    names = "|".join(q.service for q in group)
    return f'{DASHBOARD_SERVICE}, job=~"{promql_label(names)}"'


def _named(expr: str, service: str) -> str:
    return f'label_replace({expr}, "job", "{promql_label(service)}", "", "")'


def dashboard_traffic(services: Sequence[SliQueries]) -> str:
    """Requests per second by service (legend {{job}})."""
    groups, single = _grouped(services, "requests")
    parts = [
        f"sum by (job) (rate({qs[0].requests}{{{_jobs(qs, len(services))}}}[{DASHBOARD_RATE}]))"
        for qs in groups.values()
    ]
    parts += [_named(q.total(DASHBOARD_RATE), q.service) for q in single]
    return " or ".join(parts)


def dashboard_errors(services: Sequence[SliQueries]) -> str:
    """The failed fraction by service (legend {{job}})."""
    groups, single = _grouped(services, "requests")
    parts = []
    for qs in groups.values():
        sel = _jobs(qs, len(services))
        failing = f"{sel}, {qs[0].error_matcher}"
        total = f"sum by (job) (rate({qs[0].requests}{{{sel}}}[{DASHBOARD_RATE}]))"
        errors = f"sum by (job) (rate({qs[0].requests}{{{failing}}}[{DASHBOARD_RATE}]))"
        parts.append(f"({errors} or 0 * {total}) / {total}")
    for q in single:
        total = q.total(DASHBOARD_RATE)
        parts.append(_named(f"({q.errors(DASHBOARD_RATE)} or 0 * {total}) / {total}", q.service))
    return " or ".join(parts)


def dashboard_latency(services: Sequence[SliQueries], quantile: str) -> str:
    """A latency quantile by service (legend {{job}})."""
    groups, single = _grouped(services, "latency")
    parts = [
        f"histogram_quantile({quantile}, sum by (job, le) "
        f"(rate({qs[0].bucket}{{{_jobs(qs, len(services))}}}[{DASHBOARD_RATE}])))"
        for qs in groups.values()
    ]
    parts += [_named(q.latency_quantile(quantile, DASHBOARD_RATE), q.service) for q in single]
    return " or ".join(parts)
