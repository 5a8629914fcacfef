"""The health config file (Gatus-like): endpoints, their conditions, and defaults.

Validated like a plan: every problem at once, as file:line:col, unknown keys with a
suggestion (scalectl.plan.load helpers); conditions, URLs and headers are checked here too,
in the same pass as the schema, so a malformed one is bad input before anything is probed
and one run of `scalectl health` lists every problem. Format and example: docs/health.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from scalectl.duration import parse_duration
from scalectl.errors import InputError
from scalectl.health.checks import Check, default_conditions
from scalectl.health.conditions import Condition, ConditionError, parse_condition
from scalectl.health.headers import name_problem, value_problem
from scalectl.health.targets import ENDPOINT_SCHEMES, PlanFacts, Target, check_url, from_url
from scalectl.health.vocabulary import Vocabulary, builtin, custom, map_problems
from scalectl.plan.load import Problem, raise_problems, schema_problems
from scalectl.strict import Strict
from scalectl.yamlsource import Located, load

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


def _vocabulary(value: Any) -> Any:
    # A name is checked here; a map's words in _content_problems, each at its own place.
    if isinstance(value, str):
        builtin(value)
        return value
    if isinstance(value, dict):
        return value
    raise ValueError("expected a built-in vocabulary's name or a map {word: pass|warn|fail}")


VocabularyChoice = Annotated[Any, BeforeValidator(_vocabulary)]


class Endpoint(Strict):
    """One entry of `endpoints:`: a `url` probed once, or a `path` probed on every selected
    target."""

    name: str | None = Field(None, description="Shown in the table; default: the URL or path.")
    url: str | None = Field(
        None,
        description="Probed once: http(s)://..., tcp://host:port, tls://host:port or dns://name.",
    )
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
    rate_window: Duration | None = Field(
        None, description="Between the two scrapes rate() and increase() compare."
    )
    vocabulary: VocabularyChoice = Field(
        None, description="The body's status words: a built-in's name or {word: pass|warn|fail}."
    )

    @model_validator(mode="after")
    def _url_or_path(self) -> Endpoint:
        if (self.url is None) == (self.path is None):
            raise ValueError("set exactly one of 'url' or 'path'")
        return self


class Defaults(Strict):
    """`defaults:`, for every endpoint and the run (flags given on the command line win)."""

    timeout: Duration | None = Field(None, description="Per-check timeout (default 5s).")
    interval: Duration | None = Field(None, description="--watch/--wait round interval.")
    rate_window: Duration | None = Field(
        None, description="Between the two scrapes of rate()/increase() (default 5s)."
    )
    headers: dict[str, str] = Field(default_factory=dict)
    token_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Bearer token variable."
    )
    insecure: bool | None = None
    ca_cert: str | None = None
    failure_threshold: int | None = Field(None, ge=1, le=100)
    success_threshold: int | None = Field(None, ge=1, le=100)
    vocabulary: VocabularyChoice = Field(
        None, description="Status words of every endpoint (--vocabulary wins)."
    )
    warn_is: Literal["pass", "fail"] | None = Field(
        None, description="What a warn row means for the exit code (--warn-is wins)."
    )


class ConfigFile(Strict):
    """A health config file as written: `version: 1`, `defaults` and `endpoints`."""

    version: Literal[1]
    defaults: Defaults = Defaults()
    endpoints: list[Endpoint] = Field(min_length=1)


@dataclass(frozen=True)
class EndpointSpec:
    """An endpoint, validated and parsed: conditions as Condition objects, durations as seconds."""

    name: str
    url: str | None
    path: str | None
    targets: TargetFilter
    conditions: tuple[Condition, ...] | None
    headers: tuple[tuple[str, str], ...]
    timeout: float | None
    rate_window: float | None = None
    vocabulary: Vocabulary | None = None


@dataclass(frozen=True)
class HealthConfig:
    """A loaded health config: where it came from, its defaults and its endpoints."""

    source: str
    defaults: Defaults
    endpoints: tuple[EndpointSpec, ...]
    vocabulary: Vocabulary | None = None  # defaults.vocabulary

    @property
    def needs_targets(self) -> bool:
        """Whether some endpoint is a `path` and so needs targets (the stack, a plan or URLs)."""
        return any(e.path is not None for e in self.endpoints)


def load_config(path: Path) -> HealthConfig:
    """Load and validate the health config at `path`. Raises InputError listing every problem
    (schema, conditions, URLs, headers) as file:line:col."""
    located = load(path)
    data = located.data
    if not isinstance(data, dict):
        raise InputError(
            f"{located.file}:1:1: a health config is a YAML mapping starting with 'version: 1'"
        )
    problems = schema_problems(ConfigFile, data, located)
    problems += _content_problems(data, located)
    if problems:
        raise_problems(located.file, problems)
    model = ConfigFile.model_validate(data)
    endpoints = [
        EndpointSpec(
            name=endpoint.name or endpoint.url or endpoint.path or "",
            url=endpoint.url,
            path=endpoint.path,
            targets=endpoint.targets,
            conditions=tuple(parse_condition(c) for c in endpoint.conditions)
            if endpoint.conditions
            else None,
            headers=tuple(endpoint.headers.items()),
            timeout=endpoint.timeout,
            rate_window=endpoint.rate_window,
            vocabulary=vocabulary_of(endpoint.vocabulary),
        )
        for endpoint in model.endpoints
    ]
    return HealthConfig(
        located.file, model.defaults, tuple(endpoints), vocabulary_of(model.defaults.vocabulary)
    )


def vocabulary_of(choice: str | dict[str, str] | None) -> Vocabulary | None:
    """A validated `vocabulary:` as a Vocabulary (None when not given)."""
    if choice is None:
        return None
    return builtin(choice) if isinstance(choice, str) else custom(choice)


def _content_problems(data: dict[str, Any], located: Located) -> list[Problem]:
    """What the schema cannot see: malformed conditions, URLs health cannot probe, headers
    that cannot be sent. Read from the raw document, so they are found even when the schema
    has problems elsewhere."""
    problems: list[Problem] = []

    def add(where: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        problems.append(Problem(located.mark(where, key=key), where, message))

    def headers(value: Any, here: tuple[str | int, ...]) -> None:
        for name, text in value.items() if isinstance(value, dict) else ():
            where = (*here, str(name))
            if why := name_problem(str(name)):
                add(where, why, key=True)
            elif isinstance(text, str) and (why := value_problem(str(name), text)):
                add(where, why)

    def words(value: Any, here: tuple[str | int, ...]) -> None:
        if not isinstance(value, dict):
            return
        for problem in map_problems(value):
            where = here if problem.word is None else (*here, str(problem.word))
            add(where, problem.message, key=problem.in_word)

    defaults = data.get("defaults")
    if isinstance(defaults, dict):
        headers(defaults.get("headers"), ("defaults", "headers"))
        words(defaults.get("vocabulary"), ("defaults", "vocabulary"))
    endpoints = data.get("endpoints")
    for i, endpoint in enumerate(endpoints if isinstance(endpoints, list) else []):
        if not isinstance(endpoint, dict):
            continue
        here: tuple[str | int, ...] = ("endpoints", i)
        url = endpoint.get("url")
        if isinstance(url, str) and (why := check_url(url, ENDPOINT_SCHEMES)):
            add((*here, "url"), why)
        conditions = endpoint.get("conditions")
        if isinstance(conditions, list):
            if not conditions:
                add((*here, "conditions"), "must list at least one")
            for j, text in enumerate(conditions):
                if isinstance(text, str):
                    try:
                        parse_condition(text)
                    except ConditionError as exc:
                        add((*here, "conditions", j), str(exc))
        headers(endpoint.get("headers"), (*here, "headers"))
        words(endpoint.get("vocabulary"), (*here, "vocabulary"))
    return problems


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
            target = from_url(spec.url, ENDPOINT_SCHEMES)
            chosen = tuple(conditions) or spec.conditions or default_conditions(spec.url, facts)
            checks.append(
                Check(
                    target,
                    spec.name,
                    spec.url,
                    chosen,
                    spec.headers,
                    spec.timeout,
                    spec.rate_window,
                    spec.vocabulary,
                )
            )
            continue
        assert spec.path is not None
        for target in targets:
            if not _selected(spec.targets, target):
                continue
            chosen = (
                tuple(conditions)
                or spec.conditions
                or default_conditions(spec.path, facts, target.service)
            )
            url = target.base_url + spec.path
            checks.append(
                Check(
                    target,
                    spec.name,
                    url,
                    chosen,
                    spec.headers,
                    spec.timeout,
                    spec.rate_window,
                    spec.vocabulary,
                )
            )
    return checks


def _selected(wanted: TargetFilter, target: Target) -> bool:
    if wanted == "all" or target.kind == "url":
        return True
    return (wanted == "instances") == (target.kind == "instance")
