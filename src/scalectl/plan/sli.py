"""`services.<name>.sli`: which series measure a service's requests, errors and latency.

Two forms, as Sloth and OpenSLO have them. The metric form names a request counter, a
latency histogram and their labels; the raw form gives the error and total counts as
PromQL with Sloth's `{{.window}}` placeholder. Omitted, the SLI is the reference app's
(`http_requests_total`, `http_request_duration_seconds`, labels status, route and method,
series of `job="<service>"`). The queries built from it are in scalectl.plan.sliquery.

Field descriptions here become docs/plan.md and the editor-facing JSON Schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, Field

from scalectl.strict import Strict

# Prometheus' metric and label name grammar (the classic one, without UTF-8 names).
METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]{0,199}"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]{0,99}"
# The window placeholder of Sloth's error_query and total_query.
WINDOW = "{{.window}}"
MAX_QUERY_CHARS = 1000
MAX_SELECTOR_CHARS = 500
# A label value in a selector or the error regex: printable ASCII without the characters
# that would end the PromQL string (", \), the single-quoted YAML of the promtool tests (')
# or start a Grafana variable ($).
_VALUE = r"[ !#%&(-\[\]-~]{0,200}"
_MATCHER = re.compile(rf'\s*({LABEL_NAME})\s*(=~|!~|!=|=)\s*"({_VALUE})"\s*', re.ASCII)
_PRINTABLE = re.compile(r"[ -~]*", re.ASCII)


def _name(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern, re.ASCII)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(
                f"must be a Prometheus {what} name: a letter or '_'"
                f"{', or :' if what == 'metric' else ''}, then letters, digits or '_'"
                f"{' or :' if what == 'metric' else ''} (at most 200 characters)"
            )
        if what == "label" and value.startswith("__"):
            raise ValueError("must not start with '__': Prometheus reserves those labels")
        return value

    return AfterValidator(check)


MetricName = Annotated[
    str, _name(METRIC_NAME, "metric"), Field(json_schema_extra={"pattern": f"^{METRIC_NAME}$"})
]
LabelName = Annotated[
    str, _name(LABEL_NAME, "label"), Field(json_schema_extra={"pattern": f"^{LABEL_NAME}$"})
]


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a selector: `job="api"`, `code=~"5.."`."""

    label: str
    op: str
    value: str

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


def parse_selector(text: str) -> tuple[Matcher, ...]:
    """`job="api", namespace=~"prod|canary"` as matchers; ValueError saying what is wrong."""
    if len(text) > MAX_SELECTOR_CHARS:
        raise ValueError(f"must be at most {MAX_SELECTOR_CHARS} characters")
    matchers = []
    for part in _split(text):
        match = _MATCHER.fullmatch(part)
        if not match:
            raise ValueError(
                'must be label matchers separated by commas, such as job="api", '
                'namespace=~"prod|canary" (values of printable ASCII without ", \', \\ or $), '
                f"got '{part.strip()[:60]}'"
            )
        matchers.append(Matcher(*match.groups()))
    if not any(m.op in ("=", "=~") and m.value for m in matchers):
        # Prometheus refuses a selector that matches the empty label set.
        raise ValueError('needs a matcher with a non-empty value, such as job="api"')
    return tuple(matchers)


def _split(text: str) -> list[str]:
    """Split at commas outside quotes (a regex value may hold one)."""
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _selector(value: str) -> str:
    parse_selector(value)
    return value


def _regex(value: str) -> str:
    if not re.fullmatch(_VALUE, value, re.ASCII) or not value:
        raise ValueError("must be a regex of printable ASCII without \", ', \\ or $, such as 5..")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression ({exc})") from None
    return value


def _query(value: str) -> str:
    if len(value) > MAX_QUERY_CHARS:
        raise ValueError(f"must be at most {MAX_QUERY_CHARS} characters")
    if not _PRINTABLE.fullmatch(value) or not value.strip():
        # One line of printable ASCII: the query goes into YAML block scalars as it is.
        raise ValueError("must be one line of printable ASCII PromQL")
    if WINDOW not in value:
        raise ValueError(f"must contain the window placeholder {WINDOW}, as in [{WINDOW}]")
    rest = value.replace(WINDOW, "")
    if "{{" in rest or "}}" in rest:
        raise ValueError(f"may hold no template action other than {WINDOW}")
    if "$" in rest:
        raise ValueError("must not contain '$': Grafana would read it as a variable")
    if rest.count("(") != rest.count(")") or rest.count("{") != rest.count("}"):
        raise ValueError("has unbalanced parentheses or braces")
    return value


Selector = Annotated[str, AfterValidator(_selector)]
StatusRegex = Annotated[str, AfterValidator(_regex)]
Query = Annotated[str, AfterValidator(_query)]

DEFAULT_REQUESTS = "http_requests_total"
DEFAULT_DURATION = "http_request_duration_seconds"
DEFAULT_ERROR_STATUS = "5.."
RAW_FIELDS = ("error_query", "total_query")
LATENCY_FIELDS = ("good_query", "valid_query")
METRIC_FIELDS = ("requests", "status_label", "error_status")


class Sli(Strict):
    """`services.<name>.sli`: the series that measure the service. Give the metric form
    (requests, duration, labels, selector, error_status) or the raw form (error_query and
    total_query); the raw form still uses duration and its labels for latency."""

    requests: MetricName = Field(
        DEFAULT_REQUESTS, description="Counter of requests, one series per status/route/method."
    )
    duration: MetricName = Field(
        DEFAULT_DURATION,
        description="Latency histogram in seconds, its base name: _bucket and _count are added.",
    )
    status_label: LabelName = Field("status", description="Label holding the HTTP status code.")
    route_label: LabelName = Field("route", description="Label holding the route template.")
    method_label: LabelName = Field("method", description="Label holding the HTTP method.")
    selector: Selector | None = Field(
        None,
        description='Label matchers picking this service\'s series, such as job="api", '
        'namespace="prod"; default job="<service>". Use target labels: `up` is selected '
        "with them too.",
    )
    error_status: StatusRegex = Field(
        DEFAULT_ERROR_STATUS,
        description="Regex on the status label that marks a request failed, such as 5..|429.",
    )
    error_query: Query | None = Field(
        None,
        description="Raw form: PromQL counting failed requests per second over [{{.window}}], "
        'as in Sloth, e.g. sum(rate(api_requests_total{code=~"5.."}[{{.window}}])).',
    )
    total_query: Query | None = Field(
        None, description="Raw form: PromQL counting all requests per second over [{{.window}}]."
    )
    good_query: Query | None = Field(
        None,
        description="For slo.latency_objective: PromQL counting requests per second over "
        "[{{.window}}] that were fast enough; with valid_query, used instead of the histogram.",
    )
    valid_query: Query | None = Field(
        None,
        description="For slo.latency_objective: PromQL counting all requests per second over "
        "[{{.window}}] whose latency counts.",
    )
    buckets: list[Annotated[float, Field(gt=0, le=1e6)]] | None = Field(
        None,
        max_length=100,
        description="The latency histogram's finite bucket bounds in seconds. Given, "
        "slo.latency_objective.threshold_ms must be one, and the promtool tests use them.",
    )

    @property
    def raw(self) -> bool:
        """Whether errors and totals come from error_query and total_query."""
        return self.error_query is not None or self.total_query is not None
