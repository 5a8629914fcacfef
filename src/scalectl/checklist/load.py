"""Load a checklist (shipped by name, or a user's YAML file) and an answers file, reporting
every problem at once with its file:line:col, as the plan loader does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from scalectl import resources
from scalectl.checklist.model import AnswerSpec, ChecklistSpec, ItemSpec
from scalectl.checklist.verifiers import REGISTRY, Params, Verifier
from scalectl.errors import InputError
from scalectl.plan.load import Problem, raise_problems, schema_problems
from scalectl.usertext import did_you_mean, shown
from scalectl.yamlsource import Located, load, parse

SHIPPED = ("pre", "deploy", "post")
DEFAULT_VALID_FOR = 86400.0  # a pass of a file-based or manual item is reused for 24 hours


@dataclass(frozen=True)
class Item:
    """One item of a loaded checklist: its spec and, for a verified item, its verifier and
    validated parameters."""

    spec: ItemSpec
    verifier: Verifier[Any] | None  # None for a manual item
    params: Params | None

    @property
    def live(self) -> bool:
        """Verified against the running stack (health, drills, backups, ...)."""
        return self.verifier is not None and self.verifier.live

    @property
    def valid_for(self) -> float:
        """Seconds a pass is reused by a later run: the item's own `valid_for`, else 0 for
        live checks (the stack may have broken since) and 24 hours for the rest."""
        if self.spec.valid_for is not None:
            return self.spec.valid_for
        return 0.0 if self.live else DEFAULT_VALID_FOR


@dataclass(frozen=True)
class Checklist:
    """A validated checklist: its spec, its items, and where it came from."""

    spec: ChecklistSpec
    items: tuple[Item, ...]
    source: str  # "shipped: pre" or the file's path

    @property
    def name(self) -> str:
        """The checklist's name: its progress file is named after it."""
        return self.spec.name


def load_checklist(name_or_path: str) -> Checklist:
    """The checklist `pre`, `deploy` or `post` (shipped with scalectl), or the one in a
    checklist file. Raises InputError for an unknown name or an invalid file."""
    if name_or_path in SHIPPED:
        text = resources.read_template(f"checklists/{name_or_path}.yaml")
        located = parse(text, f"checklists/{name_or_path}.yaml")
        return validate(located, f"shipped: {name_or_path}")
    path = Path(name_or_path)
    if not path.exists() and path.suffix not in (".yaml", ".yml"):
        hint = did_you_mean(name_or_path, SHIPPED)
        raise InputError(
            f"no checklist named '{name_or_path}'{hint} (shipped: {', '.join(SHIPPED)}; "
            "or give a checklist YAML file)"
        )
    return validate(load(path), str(path))


def validate(located: Located, source: str) -> Checklist:
    """Validate a parsed checklist; `source` says where it came from. Returns the Checklist;
    raises InputError listing every problem (schema, duplicate ids, unknown kinds and their
    parameters) as file:line:col."""
    data = located.data
    if not isinstance(data, dict):
        raise InputError(
            f"{located.file}:1:1: a checklist is a YAML mapping starting with 'version: 1'"
        )
    problems = plain(schema_problems(ChecklistSpec, data, located))
    items = data.get("items")
    seen: dict[str, int] = {}
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        ident = item.get("id")
        if isinstance(ident, str):
            where: tuple[str | int, ...] = ("items", i, "id")
            if ident in seen:
                first = located.mark(("items", seen[ident], "id")).line
                problems.append(
                    Problem(
                        located.mark(where),
                        where,
                        f"duplicate id '{ident}' (first at line {first})",
                    )
                )
            else:
                seen[ident] = i
        if isinstance(item.get("verify"), dict):
            problems.extend(_verify_problems(item["verify"], ("items", i, "verify"), located))
    if problems:
        raise_problems(located.file, problems)
    spec = ChecklistSpec.model_validate(data)
    built = []
    for item_spec in spec.items:
        if item_spec.verify is None:
            built.append(Item(item_spec, None, None))
            continue
        verifier = REGISTRY[item_spec.kind]
        params = {k: v for k, v in item_spec.verify.items() if k != "kind"}
        built.append(Item(item_spec, verifier, verifier.params.model_validate(params)))
    return Checklist(spec, tuple(built), source)


def _verify_problems(
    verify: dict[str, Any], prefix: tuple[str | int, ...], located: Located
) -> list[Problem]:
    kind = verify.get("kind")
    where = (*prefix, "kind")
    if kind is None:
        return [Problem(located.mark(prefix), where, f"required: one of {', '.join(REGISTRY)}")]
    if not isinstance(kind, str) or kind not in REGISTRY:
        hint = did_you_mean(str(kind), REGISTRY)
        return [
            Problem(
                located.mark(where),
                where,
                f"unknown verifier '{kind}'{hint} (known: {', '.join(REGISTRY)})",
            )
        ]
    params = {k: v for k, v in verify.items() if k != "kind"}

    def origin(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
        return (*prefix, *loc)

    return plain(schema_problems(REGISTRY[kind].params, params, located, origin))


# pydantic's wording, as schema_problems passes it on, and what a person reads instead.
_PLAIN = (
    (re.compile(r"must be a valid dictionary( or instance of \w+)?"), "must be a mapping"),
    (re.compile(r"must be a valid boolean.*"), "must be yes or no (true or false)"),
    (re.compile(r"must be a valid list"), "must be a list"),
    (re.compile(r"must be a valid string"), "must be text"),
    (re.compile(r"must be a valid integer.*"), "must be a whole number"),
    (re.compile(r"must be a valid number.*"), "must be a number"),
    (
        re.compile(r"must match pattern '\^\[a-z0-9\]\[a-z0-9-\].*"),
        "must be lowercase letters, digits and dashes, starting with a letter or digit",
    ),
    (
        re.compile(r"must match pattern '\^\[a-z0-9\]\[a-z0-9_-\].*"),
        "must be lowercase letters, digits, '_' and '-', starting with a letter or digit",
    ),
)


def plain(problems: list[Problem]) -> list[Problem]:
    """The problems with pydantic's type vocabulary reworded for people."""
    out = []
    for problem in problems:
        message = problem.message
        for pattern, text in _PLAIN:
            message = pattern.sub(text, message)
        out.append(Problem(problem.mark, problem.path, message))
    return out


_BOOL: TypeAdapter[bool] = TypeAdapter(bool)


def _yes_no(value: Any) -> bool | None:
    # YAML 1.2 reads a bare `yes` as text; the shorthand takes what the `answer` field takes.
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return _BOOL.validate_python(value)
        except ValidationError:
            return None
    return None


def load_answers(path: Path, checklist: Checklist) -> dict[str, AnswerSpec]:
    """An answers file: `item-id: {answer: yes|no, by: NAME, note: TEXT}` (or `item-id: yes`)."""
    located = load(path)
    data = located.data
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(
            f"{located.file}:1:1: an answers file maps item ids to "
            "{answer: yes|no, by: NAME, note: TEXT}"
        )
    manual = [i.spec.id for i in checklist.items if i.spec.manual]
    every = [i.spec.id for i in checklist.items]
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for key, value in data.items():
        where: tuple[str | int, ...] = (key,)
        if key not in every:
            hint = did_you_mean(key, manual)
            problems.append(
                Problem(
                    located.mark(where, key=True),
                    where,
                    f"no item '{shown(key)}' in checklist {checklist.name}{hint}",
                )
            )
            continue
        if key not in manual:
            problems.append(
                Problem(
                    located.mark(where, key=True),
                    where,
                    "verified automatically; only items with 'ask' take answers",
                )
            )
            continue
        answer = _yes_no(value)
        if answer is None and not isinstance(value, dict):
            problems.append(
                Problem(
                    located.mark(where),
                    where,
                    "expected yes, no or {answer: yes|no, by: NAME, note: TEXT}, "
                    f"got {shown(repr(value))}",
                )
            )
            continue
        values[key] = value if answer is None else {"answer": answer}

        def origin(loc: tuple[str | int, ...], key: str = key) -> tuple[str | int, ...]:
            return (key, *loc)

        problems.extend(plain(schema_problems(AnswerSpec, values[key], located, origin)))
    if problems:
        raise_problems(located.file, problems)
    return {key: AnswerSpec.model_validate(value) for key, value in values.items()}
