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
STAGES = fixture_path("locust", "stages.py")
SLOW_IMPORT = fixture_path("locust", "slow_import.py")
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


def test_run_time_counts_from_the_start_however_long_the_locustfile_took_to_load(
    cli: Cli, tmp_path: Path, server: str
) -> None:
    # Locust arms -t on gevent's cached clock, stale since `import locust`: before the fix
    # the locustfile's 2 s import counted in the run's 3 s.
    result, report = run(
        cli, tmp_path, SLOW_IMPORT, "-H", server, "-u", "2", "-r", "2", "-t", "3s",
        "--processes", "1",
    )  # fmt: skip
    assert result.code == ExitCode.OK, result.stdout + result.stderr
    assert 2.8 <= report["meta"]["duration_s"] < 4, report["meta"]


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


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_load_shape_sets_the_end_and_the_report_says_so(
    cli: Cli, tmp_path: Path, server: str, processes: str
) -> None:
    # The shape ends after 4 s; -u and -r do not apply to it (as in Locust), and without
    # -t the bound is --max-run-time.
    result, report = run(
        cli, tmp_path, STAGES, "-H", server, "-u", "50", "-r", "50", "--max-run-time", "60s",
        "--processes", processes,
    )  # fmt: skip
    assert result.code == ExitCode.OK, result.stdout + result.stderr
    meta = report["meta"]
    assert meta["shape"] == "Stages" and meta["shape_cut"] is False, meta
    assert meta["users"] is None and meta["spawn_rate"] is None, meta
    assert 3.5 <= float(meta["run_time"].removesuffix("s")) < 15, meta
    assert meta["max_run_time"] == "60s"
    assert max(w["users"] for w in report["timeseries"]) == 4
    assert report["total"]["requests"] > 0
    assert no_locust_left(server)


def test_a_load_shape_is_stopped_at_max_run_time_with_its_reports(
    cli: Cli, tmp_path: Path, server: str
) -> None:
    result = cli(
        "loadtest", "--report-dir", tmp_path, STAGES, "-H", server, "-t", "2s",
        "--max-run-time", "4s", "--processes", "2", env={"STAGES_SECONDS": "120"},
    )  # fmt: skip
    assert result.code == ExitCode.INCONCLUSIVE, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["meta"]["shape_cut"] is True
    assert 3.5 <= float(report["meta"]["run_time"].removesuffix("s")) < 10, report["meta"]
    assert report["total"]["requests"] > 0
    assert "Stages was still running at --max-run-time" in result.stderr
    assert no_locust_left(server)
