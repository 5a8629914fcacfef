"""`autoscaling.metrics`: HPA metrics of the user's choosing (autoscaling/v2 `Pods`, `Object`
and `External` sources), each with the Prometheus series that defines it, and what
prometheus-adapter needs to serve it.

Field descriptions here become docs/plan.md and the editor-facing JSON Schema, so they
are written for the person filling in the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from scalectl.plan.fieldtypes import Fraction, Name, Quantity
from scalectl.plan.patterns import LabelKey, LabelValue, MetricName
from scalectl.plan.sli import Sli
from scalectl.plan.sliquery import SliQueries
from scalectl.strict import Strict

MAX_METRICS = 10  # per HPA, besides CPU, memory and requests per second
MAX_SELECTOR_LABELS = 10
MetricType = Literal["Pods", "Object", "External"]
SeriesKind = Literal["gauge", "counter", "histogram"]
DEFAULT_QUANTILE = 0.95
DEFAULT_WINDOW_SECONDS = 120

# The objects an `Object` metric may describe: kind -> (apiVersion, the adapter's group).
# The series name the object in a label of the kind's name in lower case (`httproute`).
OBJECT_KINDS: dict[str, tuple[str, str]] = {
    "Service": ("v1", ""),
    "Ingress": ("networking.k8s.io/v1", "networking.k8s.io"),
    "HTTPRoute": ("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io"),
    "Deployment": ("apps/v1", "apps"),
    "StatefulSet": ("apps/v1", "apps"),
}
ObjectKind = Literal["Service", "Ingress", "HTTPRoute", "Deployment", "StatefulSet"]
# Which target types each source takes (autoscaling/v2 validation): Utilization is for
# CPU and memory only.
TARGET_TYPES: dict[str, tuple[str, ...]] = {
    "Pods": ("AverageValue",),
    "Object": ("Value", "AverageValue"),
    "External": ("Value", "AverageValue"),
}


class MetricTarget(Strict):
    """The value an HPA metric is held at."""

    type: Literal["AverageValue", "Value", "Utilization"] = Field(
        description="AverageValue: per pod (Pods, Object, External); Value: in total (Object, "
        "External). Utilization is for CPU and memory only: use cpu_percent or memory_percent."
    )
    value: Quantity = Field(
        description="A Kubernetes quantity: 30, 300m (0.3), 1.5k. Per pod for AverageValue."
    )


class DescribedObject(Strict):
    """The Kubernetes object an `Object` metric describes."""

    kind: ObjectKind = Field(
        description="Service, Ingress, HTTPRoute (Gateway API), Deployment or StatefulSet; "
        "its series carry a label of the kind in lower case (`ingress`) and `namespace`."
    )
    name: Name = Field(description="The object's name in the plan's namespace.")

    @property
    def api_version(self) -> str:
        """The object's apiVersion."""
        return OBJECT_KINDS[self.kind][0]


class PrometheusSource(Strict):
    """`autoscaling.metrics[].prometheus`: the Prometheus series behind a metric, from which
    kubernetes/prometheus-adapter.yaml builds the adapter's query."""

    series: MetricName | None = Field(
        None,
        description="The series' name in Prometheus (for a histogram, without _bucket); "
        "default: the metric's name.",
    )
    kind: SeriesKind = Field(
        "gauge",
        description="gauge: its value, summed; counter: its per-second rate, summed; "
        "histogram: the `quantile` of its buckets' rate.",
    )
    quantile: Fraction | None = Field(
        None, description=f"histogram only: which quantile; default {DEFAULT_QUANTILE}."
    )
    window_seconds: int = Field(
        DEFAULT_WINDOW_SECONDS,
        ge=30,
        le=3600,
        description="counter and histogram: the rate() window.",
    )


class ScalingMetric(Strict):
    """`autoscaling.metrics[]`: one HPA metric served by a metrics adapter, such as a queue's
    depth (External) or requests per second or p95 latency per pod (Pods)."""

    type: MetricType = Field(
        description="Pods: a per-pod series averaged over the pods; Object: a series of one "
        "Service, Ingress, HTTPRoute, Deployment or StatefulSet; External: any series (a "
        "queue's depth)."
    )
    name: MetricName = Field(description="The metric's name as the HPA asks the adapter for it.")
    selector: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        max_length=MAX_SELECTOR_LABELS,
        description="Labels the series must carry (matchLabels), such as {queue: default}.",
    )
    object: DescribedObject | None = Field(None, description="Object only: what it describes.")
    target: MetricTarget
    prometheus: PrometheusSource = Field(
        PrometheusSource(), description="The series behind it; default: a gauge of this name."
    )

    def definition(self) -> MetricDefinition:
        """What the adapter serves under this metric's name."""
        source = self.prometheus
        return MetricDefinition(
            api="external" if self.type == "External" else "custom",
            name=self.name,
            series=source.series or self.name,
            kind=source.kind,
            quantile=(source.quantile or DEFAULT_QUANTILE) if source.kind == "histogram" else None,
            window_seconds=source.window_seconds if source.kind != "gauge" else None,
            resource=self.object.kind if self.object else ("Pod" if self.type == "Pods" else None),
        )


@dataclass(frozen=True)
class MetricDefinition:
    """A metric as prometheus-adapter serves it: its API (custom.metrics.k8s.io or
    external.metrics.k8s.io), name, the series and how it is aggregated, and the Kubernetes
    resource (Pod, Service, ...) its series are labelled with, None for External."""

    api: Literal["custom", "external"]
    name: str
    series: str
    kind: SeriesKind
    quantile: float | None
    window_seconds: int | None
    resource: str | None
    # PromQL label matchers the series must also carry, escaped (`job="api"`); empty for none.
    matchers: str = ""

    def describe(self) -> str:
        """The definition in words, for a conflict message."""
        what = {"gauge": "gauge", "counter": "rate of counter", "histogram": "quantile of"}
        text = f"{what[self.kind]} {self.series}"
        if self.quantile is not None:
            text = f"p{self.quantile * 100:g} of histogram {self.series}"
        if self.window_seconds is not None:
            text += f" over {self.window_seconds}s"
        if self.matchers:
            text += f" where {self.matchers}"
        return text + (f" per {self.resource}" if self.resource else "")


# The metrics scalectl's own HPA targets use: services' `rps_per_pod` (request_rate) and
# workers' default queue depth.
REQUEST_RATE_WINDOW_SECONDS = 120
QUEUE_DEPTH = MetricDefinition("external", "queue_depth", "queue_depth", "gauge", None, None, None)


def request_rate(service: str, sli: Sli) -> MetricDefinition | None:
    """The per-pod request rate `rps_per_pod` scales on, from the service's SLI counter:
    `<counter without _total>_per_second` (http_requests_per_second by default). An explicit
    sli.selector joins the query, and the service's name then starts the metric's name, so
    two services' selectors never share one. None for a raw SLI: no per-pod rate can be
    derived from its total_query."""
    if sli.raw:
        return None
    base = sli.requests.removesuffix("_total")
    queries = SliQueries(service, sli)
    matchers = queries.selector if queries.custom_selector else ""
    name = f"{base}_per_second"
    if matchers:
        # Service names are DNS labels; a metric name takes no '-'.
        name = f"{service.replace('-', '_')}_{name}"
    return MetricDefinition(
        "custom",
        name,
        sli.requests,
        "counter",
        None,
        REQUEST_RATE_WINDOW_SECONDS,
        "Pod",
        matchers,
    )
