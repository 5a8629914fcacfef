"""The plan's JSON Schema, from the pydantic model (`scalectl plan schema`, docs/plan.md)."""

from __future__ import annotations

import json
from typing import Any

from scalectl.plan.model import Plan

SCHEMA_ID = "https://scalectl.dev/schemas/plan-v1.json"


def json_schema() -> dict[str, Any]:
    """The plan's JSON Schema (draft 2020-12) as `scalectl plan schema` prints it: generated from
    the model, field descriptions only."""
    schema = Plan.model_json_schema(mode="validation")
    # Pydantic turns class docstrings into descriptions; they are written for readers of the
    # code, while the schema (and docs/plan.md) describes the fields.
    for node in (schema, *schema.get("$defs", {}).values()):
        node.pop("description", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "scalectl capacity plan (version 1)"
    return dict(sorted(schema.items(), key=lambda kv: (not kv[0].startswith("$"), kv[0])))


def _limits() -> list[str]:
    from scalectl import inputlimit as limit
    from scalectl import yamlsource as y

    return [
        "## Limits",
        "",
        "Plans arrive in pull requests, so every YAML input (plans, SLO files, health "
        "configs, checklists, answers) is bounded; each violation exits 2 and names "
        "`file:line:col` (or the file). A file is a regular file of at most "
        f"{limit.MAX_FILE_BYTES:,} bytes (no FIFOs or devices; the `{limit.LIMIT_ENV}` environment "
        f"variable sets another size, {limit.LIMIT_RANGE[0]:,} to {limit.LIMIT_RANGE[1]:,}), "
        f"nesting at most {y.MAX_DEPTH} "
        f"levels, with at most {y.MAX_ALIASES} aliases and {y.MAX_VALUES:,} values after "
        f"alias expansion, and numbers of at most {y.MAX_NUMBER_CHARS} characters. Numbers "
        "must be finite (no `.inf` or `.nan`) and within the bounds shown below.",
        "",
    ]


def _booleans() -> list[str]:
    return [
        "## Booleans",
        "",
        "Every YAML input reads booleans as YAML 1.2 does: a plain `true` or `false` (also "
        "`True`, `TRUE`, `False`, `FALSE`) is a boolean, and `yes`, `no`, `on` and `off` are "
        "text, where YAML 1.1 (PyYAML's default) made them booleans. So keys need no quotes: "
        "`retries: {on: [error, timeout]}` is the key `on`, and `env: {FEATURE: on}` sets the "
        "text `on`. A field whose type is boolean still takes `yes`/`no`, `on`/`off`, `y`/`n`, "
        "`t`/`f` and `1`/`0` (any case) as the boolean they name, as Go's yaml.v3 does; any other "
        "text there is an error.",
        "",
    ]


def markdown() -> str:
    """docs/plan.md's field reference, one table per object in the schema."""
    schema = json_schema()
    defs: dict[str, Any] = schema.get("$defs", {})
    lines = [
        "# Plan reference (version 1)",
        "",
        "Generated from the schema by `python docs/generate.py`; do not edit by hand.",
        "Print the schema itself with `scalectl plan schema`.",
        "",
        *_limits(),
        *_booleans(),
    ]
    order = ["Plan", *sorted(defs)]
    for name in order:
        node = schema if name == "Plan" else defs[name]
        props: dict[str, Any] = node.get("properties", {})
        if not props:
            continue
        required = set(node.get("required", []))
        lines += [f"## {name}", "", "| field | type | default | description |", "|---|---|---|---|"]
        for field, spec in props.items():
            default = "required" if field in required else _fmt_default(spec.get("default"))
            desc = str(spec.get("description", "")).replace("|", "\\|")
            lines.append(f"| `{field}` | {_type(spec)} | {default} | {desc} |")
        lines.append("")
    return "\n".join(lines)


def _fmt_default(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict | list) and not value:
        return "empty"
    return f"`{value}`" if isinstance(value, str) else f"`{json.dumps(value)}`"


def _type(spec: dict[str, Any] | bool) -> str:
    if isinstance(spec, bool):
        return "any"
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in spec:
        return " or ".join(_type(s) for s in spec["anyOf"])
    if "enum" in spec:
        return " \\| ".join(f"`{v}`" for v in spec["enum"])
    if "const" in spec:
        return f"`{spec['const']}`"
    kind = spec.get("type", "any")
    if kind == "array":
        return f"list of {_type(spec.get('items', {}))}"
    if kind == "object" and isinstance(spec.get("additionalProperties"), dict):
        return f"map of {_type(spec['additionalProperties'])}"
    bounds = []
    for key, sym in (
        ("exclusiveMinimum", ">"),
        ("minimum", "≥"),
        ("exclusiveMaximum", "<"),
        ("maximum", "≤"),
    ):
        if key in spec:
            bounds.append(f"{sym} {spec[key]}")
    return f"{kind}{' (' + ', '.join(bounds) + ')' if bounds else ''}"
