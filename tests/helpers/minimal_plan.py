"""The minimal plan fixture, with lines added to its `api` service, rendered for
production: the shape the plan-field tests (probe timings, HPA behaviour) start from."""

from __future__ import annotations

from pathlib import Path

from scalectl.plan import prepare, render_files
from tests.conftest import fixture_path

MINIMAL = fixture_path("plans", "minimal.yaml").read_text()
REPLICAS = "    replicas: {min: 2, max: 10}\n"
FIRST_ADDED_LINE = MINIMAL.splitlines().index(REPLICAS.rstrip()) + 2


def with_api(extra: str) -> str:
    """MINIMAL with `extra` (indented for services.api) after the api's replicas."""
    assert REPLICAS in MINIMAL
    return MINIMAL.replace(REPLICAS, REPLICAS + extra)


def render(tmp_path: Path, text: str) -> dict[str, bytes]:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return render_files(prepare(path, "production"))
