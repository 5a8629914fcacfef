"""The health config file (Gatus-like): endpoints, their conditions, and defaults.

Validated like a plan: every problem at once, as file:line:col, unknown keys with a
suggestion (scalectl.plan.load helpers); conditions are parsed here, so a malformed one is
bad input before anything is probed. Format and example: docs/health.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from scalectl.errors import InputError
from scalectl.health.checks import Check, default_conditions
from scalectl.health.conditions import Condition, ConditionError, parse_condition
from scalectl.health.duration import parse_duration
from scalectl.health.targets import PlanFacts, Target, check_url, from_url
from scalectl.plan.load import Problem, raise_problems, schema_problems
from scalectl.plan.yamlsource import load

TargetFilter = Literal["all", "instances", "balancer"]


def _duration(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 5s or 500ms")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError(f"must be longer than 0 seconds, got {value}")
        return float(value)
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError("expected a duration such as 5s or 500ms")


Duration = Annotated[float, BeforeValidator(_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Strict):
    name: str | None = Field(None, description="Shown in the table; default: the URL or path.")
    url: str | None = Field(None, description="An absolute http(s) URL, probed once.")
    path: str | None = Field(
        None,
        pattern=r"^/",
        description="Probed on every target (stack, --plan or URL arguments).",
    )
    targets: TargetFilter = Field("all", description="With `path`: which targets.")
    conditions: list[str] | None = Field(
        None, description="Gatus-style conditions; default: by path (docs/health.md)."
    )
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration | None = None

    @model_validator(mode="after")
    def _url_or_path(self) -> Endpoint:
        if (self.url is None) == (self.path is None):
            raise ValueError("set exactly one of 'url' or 'path'")
        return self


class Defaults(_Strict):
    timeout: Duration | None = Field(None, description="Per-check timeout (default 5s).")
    interval: Duration | None = Field(None, description="--watch/--wait round interval.")
    headers: dict[str, str] = Field(default_factory=dict)
    token_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Bearer token variable."
    )
    insecure: bool | None = None
    ca_cert: str | None = None
    failure_threshold: int | None = Field(None, ge=1, le=100)
    success_threshold: int | None = Field(None, ge=1, le=100)


class ConfigFile(_Strict):
    version: Literal[1]
    defaults: Defaults = Defaults()
    endpoints: list[Endpoint] = Field(min_length=1)


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    url: str | None
    path: str | None
    targets: TargetFilter
    conditions: tuple[Condition, ...] | None
    headers: tuple[tuple[str, str], ...]
    timeout: float | None


@dataclass(frozen=True)
class HealthConfig:
    source: str
    defaults: Defaults
    endpoints: tuple[EndpointSpec, ...]

    @property
    def needs_targets(self) -> bool:
        return any(e.path is not None for e in self.endpoints)


def load_config(path: Path) -> HealthConfig:
    located = load(path)
    data = located.data
    if not isinstance(data, dict):
        raise InputError(
            f"{located.file}:1:1: a health config is a YAML mapping starting with 'version: 1'"
        )
    problems = schema_problems(ConfigFile, data, located)
    if problems:
        raise_problems(located.file, problems)
    model = ConfigFile.model_validate(data)
    endpoints = []
    for i, endpoint in enumerate(model.endpoints):
        here: tuple[str | int, ...] = ("endpoints", i)
        if endpoint.url is not None and (why := check_url(endpoint.url)):
            problems.append(Problem(located.mark((*here, "url")), (*here, "url"), why))
        parsed: list[Condition] = []
        for j, text in enumerate(endpoint.conditions or []):
            where = (*here, "conditions", j)
            try:
                parsed.append(parse_condition(text))
            except ConditionError as exc:
                problems.append(Problem(located.mark(where), where, str(exc)))
        if endpoint.conditions is not None and not endpoint.conditions:
            where = (*here, "conditions")
            problems.append(Problem(located.mark(where), where, "must list at least one"))
        endpoints.append(
            EndpointSpec(
                name=endpoint.name or endpoint.url or endpoint.path or "",
                url=endpoint.url,
                path=endpoint.path,
                targets=endpoint.targets,
                conditions=tuple(parsed) if endpoint.conditions else None,
                headers=tuple(endpoint.headers.items()),
                timeout=endpoint.timeout,
            )
        )
    if problems:
        raise_problems(located.file, problems)
    return HealthConfig(located.file, model.defaults, tuple(endpoints))


def config_checks(
    config: HealthConfig,
    targets: Sequence[Target],
    facts: PlanFacts,
    conditions: Sequence[Condition] = (),
) -> list[Check]:
    """The config's endpoints as checks: a `url` once, a `path` on each matching target.
    `conditions` (from --condition) replace every endpoint's own."""
    checks = []
    for spec in config.endpoints:
        if spec.url is not None:
            target = from_url(spec.url)
            chosen = tuple(conditions) or spec.conditions or default_conditions(spec.url, facts)
            checks.append(Check(target, spec.name, spec.url, chosen, spec.headers, spec.timeout))
            continue
        assert spec.path is not None
        for target in targets:
            if not _selected(spec.targets, target):
                continue
            chosen = tuple(conditions) or spec.conditions or default_conditions(spec.path, facts)
            url = target.base_url + spec.path
            checks.append(Check(target, spec.name, url, chosen, spec.headers, spec.timeout))
    return checks


def _selected(wanted: TargetFilter, target: Target) -> bool:
    if wanted == "all" or target.kind == "url":
        return True
    return (wanted == "instances") == (target.kind == "instance")
