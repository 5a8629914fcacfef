"""SLO gates for `scalectl loadtest`: what an SLO file (or a plan's `slo` section) asks for.
scalectl.loadtest.evaluation judges a run against it.

The file format, verdict rules and every threshold's meaning are in docs/loadtest.md.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from scalectl.errors import InputError
from scalectl.loadtest.checks import MAX_CHECKS, Check, Checks, Statuses, Text
from scalectl.loadtest.ratecurve import RateCurve
from scalectl.loadtest.results import METRIC_REQUEST_TYPE
from scalectl.plan.load import Problem, raise_problems, schema_problems
from scalectl.plan.model import Plan
from scalectl.plan.slo import Warmup
from scalectl.strict import Strict
from scalectl.yamlsource import Located, load

LatencyMetric = Literal["p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms"]
WindowMetric = Literal[
    "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms", "error_rate", "rps"
]

LATENCY_METRICS: tuple[LatencyMetric, ...] = get_args(LatencyMetric)
THRESHOLD_METRICS = (*LATENCY_METRICS, "error_rate", "min_throughput_rps", "checks_rate")
METRIC_STATS = tuple(m.removesuffix("_ms") for m in LATENCY_METRICS)

Positive = Annotated[float, Field(gt=0)]


_FOR_PLUGIN = ("match", "regex", "checks", "status", "tag")  # a group's keys the plugin uses


def group_scope(name: str) -> str:
    """How a group is named in SLO names and report.json's `scope`: `group NAME`."""
    return f"group {name}"


def _stages(value: str) -> str:
    RateCurve.parse(value)  # its ValueError says what is wrong
    return value


Rate = Annotated[float, Field(ge=0, le=1)]


class Thresholds(Strict):
    """Whole-run limits for all requests (global) or one endpoint."""

    p50_ms: Positive | None = None
    p90_ms: Positive | None = None
    p95_ms: Positive | None = None
    p99_ms: Positive | None = None
    max_ms: Positive | None = None
    mean_ms: Positive | None = Field(None, description="Mean latency, ms.")
    error_rate: Rate | None = Field(None, description="Largest failed fraction, 0..1.")
    min_throughput_rps: Positive | None = Field(None, description="Fewest requests/s over the run.")
    checks_rate: Rate | None = Field(
        None, description="Least share of the checks evaluated on these requests that pass."
    )

    def items(self) -> list[tuple[str, float]]:
        """The thresholds that are set, in THRESHOLD_METRICS order."""
        return [(m, v) for m in THRESHOLD_METRICS if (v := getattr(self, m)) is not None]


class EndpointThresholds(Thresholds):
    """Whole-run limits for one endpoint, and the checks of its responses."""

    checks: Checks = Field(default_factory=list)


class GroupThresholds(Thresholds):
    """Whole-run limits for the endpoints whose "METHOD name" matches a glob (`match`) or a
    regular expression (`regex`, searched), counted together as one; its checks apply to
    each of those endpoints' responses. `status` and `tag` narrow it to those of their
    requests that answered with such a status, or were sent with such a tag."""

    checks: Checks = Field(default_factory=list)
    match: str | None = Field(None, description="A glob on 'METHOD name': 'GET /api/*'.")
    regex: str | None = Field(None, description="A regular expression searched in it.")
    status: Statuses | None = Field(None, description="Only responses with these: 2xx, [200, 304].")
    tag: Text | None = Field(None, description="Only requests sent with context={'tags': [TAG]}.")

    @property
    def filtered(self) -> bool:
        """Whether it counts some of its endpoints' requests only (`status`, `tag`)."""
        return self.status is not None or self.tag is not None

    @model_validator(mode="after")
    def _one_pattern(self) -> GroupThresholds:
        if (self.match is None) == (self.regex is None):
            raise ValueError("set exactly one of 'match' (a glob) or 'regex'")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"regex: {exc}") from None
        return self

    @property
    def pattern(self) -> str:
        """The pattern as written, for messages."""
        return f"match {self.match}" if self.match is not None else f"regex {self.regex}"

    def matches(self, key: str) -> bool:
        """Whether the endpoint `key` ("METHOD name") is in the group; never a custom
        metric's."""
        if key.startswith(f"{METRIC_REQUEST_TYPE} "):
            return False
        if self.match is not None:
            return fnmatch.fnmatchcase(key, self.match)
        return re.search(str(self.regex), key) is not None


class MetricThresholds(Strict):
    """Limits on a custom metric's values, in its own unit: what a scenario fired as
    `request` events of type METRIC, the value as response_time."""

    p50: Annotated[float, Field(ge=0)] | None = None
    p90: Annotated[float, Field(ge=0)] | None = None
    p95: Annotated[float, Field(ge=0)] | None = None
    p99: Annotated[float, Field(ge=0)] | None = None
    max: Annotated[float, Field(ge=0)] | None = None
    mean: Annotated[float, Field(ge=0)] | None = None

    def items(self) -> list[tuple[str, float]]:
        """The limits that are set, in METRIC_STATS order."""
        return [(m, v) for m in METRIC_STATS if (v := getattr(self, m)) is not None]


class _Bound(Strict):
    metric: WindowMetric
    endpoint: str | None = Field(None, description="'METHOD name'; all requests when omitted.")
    below: float | None = Field(None, ge=0)
    above: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_bound(self) -> _Bound:
        if (self.below is None) == (self.above is None):
            raise ValueError("set exactly one of 'below' or 'above'")
        return self

    @property
    def comparator(self) -> str:
        return "<" if self.below is not None else ">"

    @property
    def threshold(self) -> float:
        value = self.below if self.below is not None else self.above
        assert value is not None
        return value

    def holds(self, value: float) -> bool:
        return value < self.threshold if self.below is not None else value > self.threshold

    def label(self, scope: str | None = None) -> str:
        where = scope or self.endpoint or "global"
        return f"{where} {self.metric} {self.comparator} {as_written(self.threshold)}"


class WindowCriterion(_Bound):
    """`metric below/above X` in at least `min_fraction` of `window_seconds` windows."""

    window_seconds: int = Field(10, ge=1, le=3600)
    min_fraction: float = Field(gt=0, le=1)


class AbortCriterion(_Bound):
    """Stop the run as failed when `metric above/below X` held every second for `for_seconds`."""

    for_seconds: int = Field(ge=1, le=3600)


class SloSpec(Strict):
    """An SLO file (or a plan's `slo` section): whole-run thresholds globally and per endpoint,
    per-window criteria, abort criteria and the warm-up. SloSpec() has none: nothing is gated."""

    model_config = ConfigDict(populate_by_name=True)  # merged with Strict's

    version: Literal[1] = 1  # required in a file (load_slo_file); SloSpec() is "no SLOs"
    global_: Thresholds = Field(Thresholds(), alias="global")
    endpoints: dict[str, EndpointThresholds] = Field(default_factory=dict)
    groups: dict[str, GroupThresholds] = Field(default_factory=dict)
    metrics: dict[str, MetricThresholds] = Field(default_factory=dict)
    windows: list[WindowCriterion] = Field(default_factory=list)
    abort: list[AbortCriterion] = Field(default_factory=list)
    # The first seconds of the run: load is sent, nothing is gated (`--warmup` overrides).
    warmup: Warmup | None = None
    # A ramping arrival rate, as `--rate-stages` (which, like `--rate`, overrides it).
    rate_stages: Annotated[str, AfterValidator(_stages)] | None = None

    @model_validator(mode="after")
    def _checks_bounded(self) -> SloSpec:
        declared = self.declared_checks()
        if len(declared) > MAX_CHECKS:
            raise ValueError(f"checks: at most {MAX_CHECKS} in all, not {len(declared)}")
        return self

    def declared_checks(self) -> list[DeclaredCheck]:
        """Every check, numbered in file order: the endpoints', then the groups'. The Locust
        plugin gets this spec's checks (for_plugin()) and numbers them alike, so counts
        match by number."""
        out: list[DeclaredCheck] = []
        for key, item in self.endpoints.items():
            out += [DeclaredCheck(len(out) + i, key, None, c) for i, c in enumerate(item.checks)]
        for name, group in self.groups.items():
            scope, checks = group_scope(name), group.checks
            out += [DeclaredCheck(len(out) + i, scope, group, c) for i, c in enumerate(checks)]
        return out

    def for_plugin(self) -> str:
        """What the Locust plugin needs of the spec, as JSON (empty when nothing): the checks
        and what they select, and the groups that filter by status or tag."""
        groups = {
            n: {k: v for k in _FOR_PLUGIN if (v := getattr(g, k)) is not None}
            for n, g in self.groups.items()
            if g.checks or g.filtered
        }
        if not groups and not self.declared_checks():
            return ""
        endpoints = {k: {"checks": e.checks} for k, e in self.endpoints.items() if e.checks}
        only = SloSpec(endpoints=endpoints, groups=groups)
        return only.model_dump_json(by_alias=True, exclude_unset=True, exclude_none=False)

    @property
    def rate_curve(self) -> RateCurve | None:
        """`rate_stages` as a curve; None when the file has none."""
        return None if self.rate_stages is None else RateCurve.parse(self.rate_stages)

    @property
    def warmup_seconds(self) -> float | None:
        """None when the spec does not say (so a command-line default applies)."""
        from scalectl.duration import parse_duration

        return None if self.warmup is None else parse_duration(self.warmup, allow_zero=True)


@dataclass(frozen=True)
class DeclaredCheck:
    """A check as declared: its number, where (an endpoint key as written, or `group NAME`),
    the group that selects its endpoints (None for an endpoint's), and the check."""

    id: int
    scope: str
    group: GroupThresholds | None
    check: Check

    def applies_to(self, method: str, name: str) -> bool:
        """Whether it checks the responses of endpoint `method name`: the endpoint named
        (its "METHOD name", or a bare name), or any endpoint of the group."""
        if self.group is not None:
            return self.group.matches(f"{method} {name}")
        return self.scope in (f"{method} {name}", name)


def load_slo_file(path: Path) -> SloSpec:
    """Parse and validate an SLO file; every problem is reported at once as file:line:col."""
    located = load(path)
    data = located.data
    if not isinstance(data, dict):
        raise InputError(
            f"{located.file}:1:1: an SLO file is a YAML mapping starting with 'version: 1'"
        )
    problems = _problems(data, located)
    if problems:
        raise_problems(located.file, problems)
    spec = SloSpec.model_validate(data)
    if not (spec.global_.items() or spec.endpoints or spec.windows or spec.groups or spec.metrics):
        raise InputError(
            f"{located.file}:1:1: the SLO file sets no criteria; add 'global', 'endpoints',"
            " 'groups', 'metrics' or 'windows'"
        )
    return spec


def _problems(data: dict[str, Any], located: Located) -> list[Problem]:
    # `version` has a default in code (SloSpec() means "no SLOs") but a file must say it.
    out = [] if "version" in data else [Problem(located.mark(()), ("version",), "required")]
    out += schema_problems(SloSpec, data, located)
    return out or _unchecked_rates(SloSpec.model_validate(data), located)


def _unchecked_rates(spec: SloSpec, located: Located) -> list[Problem]:
    """A `checks_rate` in a file that declares no checks: a gate that could never be judged."""
    if spec.declared_checks():
        return []
    scopes: list[tuple[tuple[str, ...], Thresholds]] = [(("global",), spec.global_)]
    scopes += [(("endpoints", k), t) for k, t in spec.endpoints.items()]
    scopes += [(("groups", k), t) for k, t in spec.groups.items()]
    return [
        Problem(located.mark(path), path, "no endpoint or group of this file declares 'checks'")
        for where, t in scopes
        if t.checks_rate is not None
        for path in [(*where, "checks_rate")]
    ]


def from_plan(plan: Plan) -> SloSpec:
    """The plan's `slo` section as a spec; `availability` is for alerting and is not gated."""
    slo = plan.slo
    endpoints = {}
    for key, item in slo.endpoints.items():
        latency = item.latency.model_dump() if item.latency else {}
        endpoints[key] = EndpointThresholds(
            **latency, error_rate=item.error_rate, min_throughput_rps=item.min_throughput_rps
        )
    return SloSpec(
        version=1,
        global_=Thresholds(
            **slo.latency.model_dump(),
            error_rate=slo.error_rate,
            min_throughput_rps=slo.min_throughput_rps,
        ),
        endpoints=endpoints,
        warmup=slo.warmup,
    )


def as_written(value: float) -> str:
    """300.0 -> '300', 0.01 -> '0.01': thresholds as the user wrote them."""
    return (
        str(int(value)) if math.isclose(value, round(value)) and abs(value) < 1e15 else str(value)
    )
