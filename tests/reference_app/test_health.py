"""Health endpoints: application/health+json bodies and status codes, all dependencies up."""

from __future__ import annotations

import httpx
import pytest

from tests.reference_app.cluster import Cluster

pytestmark = pytest.mark.stack

ENDPOINTS = {
    "/health": set(),
    "/health/ready": {"postgresql:responseTime", "postgresql:migrated", "redis:responseTime"},
    "/health/database": {"postgresql:responseTime", "postgresql:connections"},
    "/health/redis": {"redis:responseTime"},
    "/health/queue": {"queue:depth"},
    "/health/system": {
        "cpu:utilization",
        "memory:utilization",
        "system:loadAverage",
        "process:openFileDescriptors",
    },
    "/health/comprehensive": {
        "postgresql:responseTime",
        "redis:responseTime",
        "queue:depth",
        "cpu:utilization",
    },
}


@pytest.mark.parametrize(("path", "checks"), sorted(ENDPOINTS.items()))
def test_health_format(cluster: Cluster, path: str, checks: set[str]) -> None:
    response = httpx.get(cluster.url + path, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/health+json"
    body = response.json()
    assert body["status"] in {"pass", "warn"}
    assert {"version", "releaseId", "serviceId", "checks"} <= set(body)
    assert checks <= set(body["checks"])
    for name, entries in body["checks"].items():
        assert ":" in name
        for entry in entries:
            assert {"componentType", "observedValue", "observedUnit", "status", "time"} <= set(
                entry
            )
            assert entry["status"] in {"pass", "warn", "fail"}


def test_dependencies_pass_when_up(cluster: Cluster) -> None:
    for path in ["/health/ready", "/health/database", "/health/redis"]:
        assert httpx.get(cluster.url + path, timeout=5).json()["status"] == "pass", path
