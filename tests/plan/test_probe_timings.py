"""Probe timings per service (`services.<name>.health.timings`, issue 14 "Configurable probe
timings"): rendered into the Deployment's probes and the Compose healthcheck, defaults
unchanged, bounds and timeout-below-period enforced."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from scalectl.files import write_tree
from scalectl.plan.validate import run_checks
from tests.helpers.input_files import problems
from tests.helpers.minimal_plan import FIRST_ADDED_LINE, MINIMAL, render, with_api

TIMINGS = """\
    health:
      timings:
        liveness: {period_seconds: 20, timeout_seconds: 3, failure_threshold: 9}
        readiness: {period_seconds: 3, timeout_seconds: 1, failure_threshold: 4}
        startup: {failure_threshold: 100}
"""


def container(files: dict[str, bytes]) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(files["kubernetes/api.yaml"]) if d]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def timings(probe: dict[str, Any]) -> tuple[int, int, int]:
    return (probe["periodSeconds"], probe["timeoutSeconds"], probe["failureThreshold"])


def test_custom_timings_reach_the_deployment(tmp_path: Path) -> None:
    found = container(render(tmp_path, with_api(TIMINGS)))
    assert timings(found["livenessProbe"]) == (20, 3, 9)
    assert timings(found["readinessProbe"]) == (3, 1, 4)
    assert timings(found["startupProbe"]) == (5, 2, 100)  # only the threshold was set
    assert found["readinessProbe"]["successThreshold"] == 1


def test_defaults_are_the_documented_timings(tmp_path: Path) -> None:
    found = container(render(tmp_path, MINIMAL))
    assert timings(found["livenessProbe"]) == (10, 5, 6)
    assert timings(found["readinessProbe"]) == (5, 2, 2)
    assert timings(found["startupProbe"]) == (5, 2, 60)


def test_compose_healthcheck_takes_the_readiness_timings(tmp_path: Path) -> None:
    files = render(tmp_path, with_api(TIMINGS))
    check = yaml.safe_load(files["compose/docker-compose.yaml"])["services"]["api"]["healthcheck"]
    assert (check["interval"], check["timeout"], check["retries"]) == ("3s", "1s", 4)
    assert "timeout=1)" in check["test"][-1]  # the check's own HTTP timeout


def test_compose_keeps_its_own_timings_for_what_the_plan_leaves_out(tmp_path: Path) -> None:
    files = render(
        tmp_path,
        with_api("    health:\n      timings:\n        readiness: {failure_threshold: 5}\n"),
    )
    check = yaml.safe_load(files["compose/docker-compose.yaml"])["services"]["api"]["healthcheck"]
    assert (check["interval"], check["timeout"], check["retries"]) == ("10s", "3s", 5)
    assert "timeout=2)" in check["test"][-1]


def test_custom_timings_pass_the_validators(tmp_path: Path) -> None:
    files = render(tmp_path, with_api(TIMINGS))
    root = tmp_path / "out"
    write_tree(root, files)
    results = run_checks(root, "1.30.0", {**os.environ, "CI": "true"})
    checked = {
        r.target: r for r in results if r.tool in ("kubernetes-validate", "compose-spec schema")
    }
    assert str(root / "kubernetes" / "api.yaml") in checked
    assert any(t.endswith("docker-compose.yaml") for t in checked)
    bad = [f"{r.tool} {r.target}: {r.detail}" for r in checked.values() if r.status != "ok"]
    assert not bad, "\n".join(bad)


def test_a_timeout_not_below_the_period_is_an_error(tmp_path: Path) -> None:
    text = with_api(
        "    health:\n      timings:\n"
        "        readiness: {period_seconds: 3, timeout_seconds: 3}\n"
        "        liveness: {period_seconds: 4}\n"  # below the default timeout, 5
    )
    line = FIRST_ADDED_LINE
    assert problems(tmp_path, text) == [
        f"{line + 2}:57 services.api.health.timings.readiness.timeout_seconds: must be below "
        "period_seconds (3 >= 3)",
        # Not in the file: the nearest key that is.
        f"{line + 3}:19 services.api.health.timings.liveness.timeout_seconds: must be below "
        "period_seconds (5 >= 4)",
    ]


def test_timings_are_bounded_integers(tmp_path: Path) -> None:
    text = with_api(
        "    health:\n      timings:\n"
        "        startup: {period_seconds: 0, failure_threshold: 101}\n"
        "        readiness: {timeout_seconds: 1.5}\n"
    )
    line = FIRST_ADDED_LINE
    assert problems(tmp_path, text) == [
        f"{line + 2}:35 services.api.health.timings.startup.period_seconds: must be greater "
        "than or equal to 1",
        f"{line + 2}:57 services.api.health.timings.startup.failure_threshold: must be less "
        "than or equal to 100",
        f"{line + 3}:38 services.api.health.timings.readiness.timeout_seconds: must be a valid "
        "integer, got a number with a fractional part",
    ]
