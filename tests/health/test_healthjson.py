"""application/health+json: statuses, aliases, components, and invalid documents."""

from __future__ import annotations

import json

import pytest

from scalectl.health.healthjson import Component, HealthJsonError, parse

CT = "application/health+json; charset=utf-8"


def doc(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_reads_status_release_and_each_component() -> None:
    body = doc(
        status="warn",
        version="1",
        releaseId="local-api-1",
        serviceId="api",
        checks={
            "postgresql:responseTime": [
                {"status": "pass", "observedValue": 1.25, "observedUnit": "ms"}
            ],
            "redis:responseTime": [
                {
                    "status": "warn",
                    "observedValue": 1000.0,
                    "observedUnit": "ms",
                    "output": "TimeoutError()",
                }
            ],
            "queue:depth": [
                {
                    "componentId": "analyse",
                    "status": "pass",
                    "observedValue": 3,
                    "observedUnit": "messages",
                },
                {"componentId": "render", "observedValue": 0},
            ],
        },
    )
    health = parse(CT, body)
    assert health is not None
    assert (health.status, health.release_id, health.service_id) == ("warn", "local-api-1", "api")
    assert health.components == (
        Component("postgresql:responseTime", "pass", "1.25 ms", ""),
        Component("redis:responseTime", "warn", "1000 ms", "TimeoutError()"),
        Component("queue:depth[analyse]", "pass", "3 messages", ""),
        # No status of its own: it shares the document's.
        Component("queue:depth[render]", "warn", "0", ""),
    )


@pytest.mark.parametrize(
    ("raw", "status"), [("ok", "pass"), ("UP", "pass"), ("down", "fail"), ("error", "fail")]
)
def test_status_aliases(raw: str, status: str) -> None:
    health = parse("application/json", doc(status=raw))
    assert health is not None and health.status == status


def test_plain_json_without_a_health_status_is_not_a_health_document() -> None:
    assert parse("application/json", doc(state="great")) is None
    assert parse("application/json", doc(status=3)) is None
    assert parse("text/plain", b"ok") is None
    assert parse("application/json", b"[1, 2]") is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>", "not JSON (Expecting value: line 1 column 1 (char 0))"),
        (b"[]", "not a JSON object"),
        (doc(checks={}), "'status' must be a status word, got None"),
        (doc(status="pass", checks=[]), "'checks' must be an object"),
        (doc(status="pass", checks={"a": [1]}), "checks.a: entries must be objects"),
    ],
)
def test_invalid_health_json_is_an_error(body: bytes, message: str) -> None:
    with pytest.raises(HealthJsonError) as info:
        parse(CT, body)
    assert str(info.value) == message
