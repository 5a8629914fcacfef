"""Load a plan file: parse, merge the chosen profile, validate, and report every problem."""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from scalectl.errors import InputError
from scalectl.plan import rules
from scalectl.plan.model import Plan, Profile
from scalectl.usertext import did_you_mean, shown
from scalectl.yamlsource import Located, Mark, dotted, load

MESSAGE_LIMIT = 300  # characters of one validator message, which may quote the value

DEFAULT_PROFILES: dict[str, dict[str, Any]] = {
    "local": {"upstreams": "loopback", "listen": "127.0.0.1:8080"},
    "production": {"upstreams": "dns", "listen": "0.0.0.0:80"},
}


@dataclass(frozen=True)
class LoadedPlan:
    """A valid plan with one profile applied: the merged plan, the profile, and the file it came
    from."""

    plan: Plan
    profile_name: str
    profile: Profile
    source: Path


@dataclass(frozen=True)
class Problem:
    """One problem of a YAML input: where (file:line:col), the key path, and the message."""

    mark: Mark
    path: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        return f"{self.mark} {dotted(self.path)}: {self.message}"


def load_plan(path: Path, profile: str = "production") -> LoadedPlan:
    """Load the plan at `path` with `profile`'s overrides merged in. Returns the LoadedPlan;
    raises InputError listing every problem (schema, profile, cross-field rules) as
    file:line:col."""
    located = load(path)
    return validate(located, profile, Path(path))


def validate(located: Located, profile_name: str, source: Path) -> LoadedPlan:
    """Validate a parsed plan for `profile_name` (`source` is its path). Returns the LoadedPlan;
    raises InputError listing every problem as file:line:col."""
    data = located.data
    if not isinstance(data, dict):
        raise InputError(f"{located.file}:1:1: a plan is a YAML mapping starting with 'version: 1'")

    problems = schema_problems(Plan, data, located)
    profiles = {**DEFAULT_PROFILES, **(data.get("profiles") or {})}
    if profile_name not in profiles:
        hint = did_you_mean(profile_name, profiles)
        raise InputError(f"{located.file}: no profile named '{shown(profile_name)}'{hint}")
    if problems:
        raise_problems(located.file, problems)

    plan = Plan.model_validate(data)
    profile = Profile.model_validate(profiles[profile_name])
    origin = _identity
    if profile.overrides:
        merged, origin = _merge(data, profile.overrides, profile_name)
        problems = schema_problems(Plan, merged, located, origin)
        if problems:
            raise_problems(located.file, problems)
        plan = Plan.model_validate(merged)

    semantic = []
    for path, message in rules.check(plan, profile):
        where = origin(path)
        semantic.append(Problem(located.mark(where), where, message))
    if semantic:
        raise_problems(located.file, semantic)
    return LoadedPlan(plan, profile_name, profile, source)


def _identity(path: tuple[str | int, ...]) -> tuple[str | int, ...]:
    return path


def raise_problems(file: str, problems: list[Problem]) -> None:
    """Raise InputError for `problems` in `file`: a count, then each problem in file order."""
    ordered = sorted(set(problems), key=lambda p: (p.mark.line, p.mark.col, str(p.path)))
    noun = "problem" if len(ordered) == 1 else "problems"
    raise InputError(f"{file}: {len(ordered)} {noun}", lines=[str(p) for p in ordered])


def _merge(
    data: dict[str, Any], overrides: dict[str, Any], profile: str
) -> tuple[dict[str, Any], Any]:
    """Deep-merge `overrides` over the plan; remember which paths came from the profile."""
    merged = copy.deepcopy(data)
    overridden: set[tuple[str | int, ...]] = set()

    def walk(target: dict[str, Any], src: dict[str, Any], path: tuple[str | int, ...]) -> None:
        for key, value in src.items():
            here = (*path, key)
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                walk(target[key], value, here)
            else:
                target[key] = copy.deepcopy(value)
                overridden.add(here)

    walk(merged, overrides, ())
    prefix: tuple[str | int, ...] = ("profiles", profile, "overrides")

    def origin(path: tuple[str | int, ...]) -> tuple[str | int, ...]:
        for i in range(len(path), 0, -1):
            if path[:i] in overridden:
                return (*prefix, *path)
        return path

    return merged, origin


def schema_problems(
    model: type[BaseModel],
    data: Any,
    located: Located,
    origin: Callable[[tuple[str | int, ...]], tuple[str | int, ...]] = _identity,
) -> list[Problem]:
    """Every way `data` breaks `model`'s schema, each at its place in the file (`origin` maps a
    path merged from a profile back to where the profile wrote it); empty when it fits.
    Unknown keys get a suggestion."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            kind = err["type"]
            if kind == "extra_forbidden":
                allowed = _fields_at(model, loc[:-1])
                hint = did_you_mean(str(loc[-1]), allowed)
                where = origin(loc)
                out.append(Problem(located.mark(where, key=True), where, f"unknown key{hint}"))
            elif kind == "missing":
                where = origin(loc)
                out.append(Problem(located.mark(where[:-1]), where, "required"))
            elif loc and loc[-1] == "[key]":
                # Pydantic's path to a refused map key ends in "[key]"; the key is the place.
                where = origin(loc[:-1])
                message = _message(err)
                if kind == "literal_error":
                    message = "unknown name; " + message.replace("must be ", "known: ", 1)
                out.append(Problem(located.mark(where, key=True), where, message))
            else:
                where = origin(loc)
                out.append(Problem(located.mark(where), where, _message(err)))
        return out
    return []


def _message(err: Any) -> str:
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    msg = msg.replace("Input should be", "must be").replace("String should", "must")
    # Validators may quote the value they refused: the user's text, shown safely.
    return shown(msg[0].lower() + msg[1:], MESSAGE_LIMIT) if msg else msg


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names allowed at `loc`, walking the model's annotations."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = _field(annotation, str(part))
            if field is None:
                return []
            annotation = field.annotation
            continue
        args = typing.get_args(annotation)
        origin = typing.get_origin(annotation)
        if origin is dict and len(args) == 2:
            annotation = args[1]
        elif origin is list and args:
            annotation = args[0]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        # The names the YAML spells: an alias where there is one (SLO files' `global`).
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _field(model: type[BaseModel], key: str) -> Any:
    """A model's field by its YAML key, which is the alias where there is one."""
    for name, field in model.model_fields.items():
        if (field.alias or name) == key:
            return field
    return None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            inner = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(inner) != 1:
                return annotation
            annotation = inner[0]
        else:
            return annotation
