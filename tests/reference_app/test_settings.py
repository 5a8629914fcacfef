"""Settings from the environment: a value that does not parse stops start-up with an error
that names the variable (no servers needed: the app fails before it connects anywhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from refapp.settings import Settings

from tests.reference_app.cluster import Cluster


def test_a_bad_value_is_located_at_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "eighty")
    monkeypatch.setenv("SHED_MAX_LOOP_LAG_MS", "fast")
    with pytest.raises(ValidationError) as caught:
        Settings()
    errors = {error["loc"]: error["type"] for error in caught.value.errors()}
    assert errors == {("PORT",): "int_parsing", ("SHED_MAX_LOOP_LAG_MS",): "float_parsing"}


def test_gunicorn_refuses_to_start_naming_the_variable(tmp_path: Path) -> None:
    cluster = Cluster(env={"CACHE_TTL_STATS": "30s"}, log=tmp_path / "gunicorn.log")
    with pytest.raises(RuntimeError, match="gunicorn exited") as caught:
        cluster.start(timeout=20)
    message = str(caught.value)
    assert "CACHE_TTL_STATS" in message
    assert "Input should be a valid integer" in message
