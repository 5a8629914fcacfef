"""`services.<name>.autoscaling` and `workers.<name>.autoscaling`: the HorizontalPodAutoscaler's
targets and its scaling behaviour (autoscaling/v2 `behavior`), with the defaults filled in
for the templates.

Field descriptions here become docs/plan.md and the editor-facing JSON Schema, so they
are written for the person filling in the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from scalectl.plan.fieldtypes import MAX_REPLICAS, Positive
from scalectl.plan.scalingmetrics import MAX_METRICS, ScalingMetric
from scalectl.strict import Strict

Direction = Literal["scale_up", "scale_down"]
# Stabilization windows when the plan sets none: react to load at once, shed it after 5 min.
DEFAULT_UP_WINDOW = 0
DEFAULT_DOWN_WINDOW = 300


class ScalingPolicy(Strict):
    """One HPA scaling policy: at most `value` pods, or `value` percent of the current count,
    per `period_seconds`."""

    type: Literal["Pods", "Percent"] = Field(description="Pods: a count; Percent: of current.")
    value: int = Field(ge=1, le=MAX_REPLICAS, description="Pods, or percent, per period.")
    period_seconds: int = Field(ge=1, le=1800, description="The window the change is allowed in.")


class ScalingRules(Strict):
    """How fast the HPA may scale in one direction; an omitted field keeps the default."""

    stabilization_window_seconds: int | None = Field(
        None,
        ge=0,
        le=3600,
        description="Past recommendations considered before scaling; default: "
        "autoscaling.scale_up_stabilization_seconds or scale_down_stabilization_seconds.",
    )
    select_policy: Literal["Max", "Min", "Disabled"] | None = Field(
        None,
        description="Which policy applies when several do: Max (the largest change), Min, or "
        "Disabled (never scale this way). Default Max.",
    )
    policies: list[ScalingPolicy] | None = Field(
        None,
        min_length=1,
        max_length=10,
        description="Default: scale_up 100% or 4 pods per 15 s; scale_down 10% per 60 s.",
    )


class Behavior(Strict):
    """`services.<name>.autoscaling.behavior`: scaling rules per direction (Kubernetes
    autoscaling/v2 `behavior`)."""

    scale_up: ScalingRules = Field(
        ScalingRules(), description="Default: 100% or 4 pods per 15 s, whichever is more."
    )
    scale_down: ScalingRules = Field(
        ScalingRules(), description="Default: at most 10% per 60 s, after a 300 s window."
    )


class Autoscaling(Strict):
    """`services.<name>.autoscaling`: the HPA's targets, stabilization windows and scaling
    behaviour."""

    enabled: bool = True
    cpu_percent: int | None = Field(70, ge=1, le=100, description="HPA average CPU target.")
    memory_percent: int | None = Field(None, ge=1, le=100)
    rps_per_pod: Positive | None = Field(
        None,
        description="HPA pods metric target: requests per second per pod, from the sli's "
        "requests counter (metric form only); default per_replica_rps × target_utilization.",
    )
    scale_up_stabilization_seconds: int = Field(DEFAULT_UP_WINDOW, ge=0, le=3600)
    scale_down_stabilization_seconds: int = Field(DEFAULT_DOWN_WINDOW, ge=0, le=3600)
    behavior: Behavior = Field(
        Behavior(), description="Scaling policies per direction; default as described there."
    )
    metrics: list[ScalingMetric] = Field(
        default_factory=list,
        max_length=MAX_METRICS,
        description="Pods, Object or External metrics served by a metrics adapter, beside the "
        "targets above (kubernetes/prometheus-adapter.yaml defines them).",
    )

    @property
    def uses_request_rate(self) -> bool:
        """Whether the HPA scales on requests per second per pod: `rps_per_pod` given, or
        derived because no CPU target is."""
        return self.enabled and (self.rps_per_pod is not None or self.cpu_percent is None)

    def rules(self, direction: Direction) -> HpaRules:
        """The HPA's rules for `direction`, defaults filled in."""
        return hpa_rules(
            self.behavior,
            direction,
            self.scale_up_stabilization_seconds,
            self.scale_down_stabilization_seconds,
        )


class WorkerAutoscaling(Strict):
    """`workers.<name>.autoscaling`: what the worker's HPA scales on, and how fast."""

    metrics: list[ScalingMetric] | None = Field(
        None,
        min_length=1,
        max_length=MAX_METRICS,
        description="Replace the default metric (External queue_depth over the worker's queues, "
        "one waiting job per consumer) with these.",
    )
    behavior: Behavior = Field(
        Behavior(), description="Scaling policies per direction, with the services' defaults."
    )

    def rules(self, direction: Direction) -> HpaRules:
        """The HPA's rules for `direction`, defaults filled in."""
        return hpa_rules(self.behavior, direction, DEFAULT_UP_WINDOW, DEFAULT_DOWN_WINDOW)


def hpa_rules(
    behavior: Behavior, direction: Direction, up_window: int, down_window: int
) -> HpaRules:
    """`behavior`'s rules for `direction`, defaults filled in; a window the plan leaves out is
    `up_window` or `down_window`."""
    given: ScalingRules = getattr(behavior, direction)
    up = direction == "scale_up"
    window = given.stabilization_window_seconds
    if window is None:
        window = up_window if up else down_window
    policies = given.policies
    if policies is None:
        policies = list(DEFAULT_POLICIES[direction])
    # Kubernetes' default is Max; scale_down has always left it implicit.
    select = given.select_policy or ("Max" if up else None)
    return HpaRules(window, select, policies, given.policies is None)


@dataclass(frozen=True)
class HpaRules:
    """One direction of an HPA's `behavior` as rendered; `default_policies` when the plan
    gave none."""

    stabilization_window_seconds: int
    select_policy: str | None
    policies: list[ScalingPolicy]
    default_policies: bool


DEFAULT_POLICIES: dict[Direction, tuple[ScalingPolicy, ...]] = {
    # Double, or add 4 pods, every 15 s, whichever is more.
    "scale_up": (
        ScalingPolicy(type="Percent", value=100, period_seconds=15),
        ScalingPolicy(type="Pods", value=4, period_seconds=15),
    ),
    # Shed at most 10% a minute, so a dip between bursts does not empty the fleet.
    "scale_down": (ScalingPolicy(type="Percent", value=10, period_seconds=60),),
}
