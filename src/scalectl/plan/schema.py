"""The plan's JSON Schema, from the pydantic model (`scalectl plan schema`, docs/plan.md)."""

from __future__ import annotations

from typing import Any

from scalectl.plan.model import Plan

SCHEMA_ID = "https://scalectl.dev/schemas/plan-v1.json"


def json_schema() -> dict[str, Any]:
    schema = Plan.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "scalectl capacity plan (version 1)"
    return dict(sorted(schema.items(), key=lambda kv: (not kv[0].startswith("$"), kv[0])))
