"""Running a locustfile through scalectl the way Locust runs it: Locust's --stop-timeout
default, a locustfile's own command-line arguments, load shapes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scalectl.errors import ExitCode
from tests.conftest import Result, fixture_path
from tests.loadtest.server import no_locust_left, serve

Cli = Callable[..., Result]
LINGERING = fixture_path("locust", "lingering.py")
CUSTOM_ARGUMENT = fixture_path("locust", "custom_argument.py")
pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve() as url:
        yield url


def run(cli: Cli, report_dir: Path, *args: str | Path) -> tuple[Result, dict]:
    result = cli("loadtest", "--report-dir", report_dir, *args)
    path = report_dir / "report.json"
    return result, json.loads(path.read_text()) if path.exists() else {}


def test_users_stop_at_once_by_default_as_in_locust(cli: Cli, tmp_path: Path, server: str) -> None:
    # Each task lingers 5 s after its request: with Locust's default (no stop timeout) the
    # run ends when its 3 s are up; with --stop-timeout 10s the users finish their task.
    common = (LINGERING, "-H", server, "-u", "2", "-r", "2", "-t", "3s", "--processes", "1")
    result, report = run(cli, tmp_path / "default", *common)
    assert result.code == ExitCode.OK, result.stdout + result.stderr
    assert report["meta"]["duration_s"] < 4.5, report["meta"]
    result, report = run(cli, tmp_path / "waited", *common, "--stop-timeout", "10s")
    assert result.code == ExitCode.OK, result.stdout + result.stderr
    assert 4.5 <= report["meta"]["duration_s"] < 8, report["meta"]
    assert no_locust_left(server)


def test_a_locustfiles_own_arguments_reach_it_after_the_double_dash(
    cli: Cli, tmp_path: Path, server: str
) -> None:
    result, report = run(
        cli, tmp_path, CUSTOM_ARGUMENT, "-H", server, "-u", "2", "-t", "3s",
        "--processes", "2", "--", "--my-argument", "foo",
    )  # fmt: skip
    assert result.code == ExitCode.OK, result.stdout + result.stderr
    assert [e["key"] for e in report["endpoints"]] == ["GET /fast foo"]
    assert report["total"]["requests"] > 0


@pytest.mark.parametrize(
    "args", [["-u", "5"], ["--run-time=10s"], ["--run-ti", "10s"], ["-t10s"], ["--headless"]]
)
def test_locust_arguments_may_not_override_scalectls_own(
    cli: Cli, tmp_path: Path, server: str, args: list[str]
) -> None:
    result, _ = run(
        cli, tmp_path, CUSTOM_ARGUMENT, "-H", server, "-t", "3s", "--", "--my-argument", "x",
        *args,
    )  # fmt: skip
    assert result.code == ExitCode.BAD_INPUT, result.stdout + result.stderr
    assert f"after --: {args[0]}" in result.stderr
    assert "scalectl sets itself" in result.stderr
