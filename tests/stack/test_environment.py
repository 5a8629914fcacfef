"""The plan's settings the local stack gives the reference app."""

from __future__ import annotations

from pathlib import Path

from scalectl.plan import prepare
from scalectl.stack.environment import app_environment
from tests.conftest import fixture_path


def test_pool_sizes_come_from_the_first_service_unless_it_uses_no_database(
    tmp_path: Path,
) -> None:
    text = fixture_path("plans", "minimal.yaml").read_text()
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    assert app_environment(prepare(plan, "local"))["DATABASE_POOL_MAX"] == "5"
    # db_time_ms: 0 sizes no pool; a pool of 0 would stop the app, so its default holds.
    plan.write_text(text.replace("db_time_ms: 20", "db_time_ms: 0"))
    env = app_environment(prepare(plan, "local"))
    assert not [name for name in env if name.startswith("DATABASE_POOL_")]
