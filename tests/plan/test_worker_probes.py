"""Worker probes for programs without an HTTP endpoint (`workers.<name>.health`, issue 14
"Workers and probes are fixed"): an `exec` command or a `tcp` port, with timings, rendered
into the Deployment's startup, readiness and liveness probes and the Compose healthcheck;
the metrics probes unchanged without them; what cannot work refused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from scalectl.checklist.verifiers import Context
from scalectl.files import write_tree
from scalectl.plan.validate import run_checks
from tests.checklist.conftest import check
from tests.conftest import EXAMPLES
from tests.helpers.input_files import problems
from tests.plan.test_worker_command import (
    HOSTILE_ARGV,
    METRICS,
    PROBES,
    compose_worker,
    k8s_container,
    render,
    with_worker,
)

PING = ["sh", "-c", 'exec celery -A proj inspect ping -d "celery@$HOSTNAME"']
EXEC = f"    health:\n      exec: {json.dumps(PING)}\n"
TIMINGS = """\
      timings:
        startup: {period_seconds: 10, timeout_seconds: 8, failure_threshold: 12}
        readiness: {period_seconds: 30, timeout_seconds: 10}
"""


def timings(probe: dict[str, Any]) -> tuple[int, int, int]:
    return (probe["periodSeconds"], probe["timeoutSeconds"], probe["failureThreshold"])


def unescaped(argv: list[str]) -> list[str]:
    """What Kubernetes and Compose run: each "$$" is one "$"."""
    assert all("$" not in a.replace("$$", "") for a in argv)  # every "$" escaped
    return [a.replace("$$", "$") for a in argv]


def test_an_exec_check_becomes_every_probe_and_the_compose_healthcheck(tmp_path: Path) -> None:
    files = render(tmp_path, with_worker(EXEC + TIMINGS))
    container = k8s_container(files)
    for probe in PROBES:
        assert unescaped(container[probe]["exec"]["command"]) == PING, probe
        assert "httpGet" not in container[probe]
    assert timings(container["startupProbe"]) == (10, 8, 12)
    assert timings(container["readinessProbe"]) == (30, 10, 3)  # failures: the default
    assert timings(container["livenessProbe"]) == (20, 5, 6)  # all defaults
    assert "ports" not in container  # still not scraped: no metrics

    healthcheck = compose_worker(files)["healthcheck"]
    assert healthcheck["test"][0] == "CMD"
    assert unescaped(healthcheck["test"][1:]) == PING
    assert (healthcheck["interval"], healthcheck["timeout"], healthcheck["retries"]) == (
        "30s",
        "10s",
        3,
    )


def test_a_hostile_exec_argv_stays_one_argument_each(tmp_path: Path) -> None:
    health = f"    health:\n      exec: {json.dumps(HOSTILE_ARGV)}\n"
    files = render(tmp_path, with_worker(health))
    for probe in PROBES:
        assert unescaped(k8s_container(files)[probe]["exec"]["command"]) == HOSTILE_ARGV
    assert unescaped(compose_worker(files)["healthcheck"]["test"][1:]) == HOSTILE_ARGV


def test_a_tcp_check_becomes_tcp_socket_probes(tmp_path: Path) -> None:
    files = render(tmp_path, with_worker("    health: {tcp: 5555}\n"))
    container = k8s_container(files)
    for probe in PROBES:
        assert container[probe]["tcpSocket"] == {"port": 5555}
    assert timings(container["readinessProbe"]) == (10, 3, 3)
    # Compose has no TCP check of its own.
    assert compose_worker(files)["healthcheck"] == {"disable": True}


def test_timings_alone_tune_the_metrics_probes(tmp_path: Path) -> None:
    files = render(tmp_path, with_worker(METRICS + "    health:\n" + TIMINGS))
    container = k8s_container(files)
    assert container["startupProbe"]["httpGet"] == {"path": "/stats", "port": "metrics"}
    assert timings(container["startupProbe"]) == (10, 8, 12)
    assert timings(container["readinessProbe"]) == (30, 10, 3)


@pytest.mark.parametrize(
    ("health", "expected"),
    [
        (
            "    health: {exec: [celery, ping], tcp: 5555}\n",
            "workers.mail.health.tcp: give exec or tcp, not both",
        ),
        (
            "    health:\n" + TIMINGS,
            "workers.mail.health: needs exec or tcp: this worker serves no metrics endpoint",
        ),
        (
            EXEC + "      timings: {liveness: {period_seconds: 5, timeout_seconds: 5}}\n",
            "workers.mail.health.timings.liveness.timeout_seconds: must be below period_seconds",
        ),
        ('    health: {exec: ["a\\nb"]}\n', "workers.mail.health.exec[0]: must be 1 to 256"),
        ("    health: {exec: []}\n", "workers.mail.health.exec: "),
        ("    health: {tcp: 0}\n", "workers.mail.health.tcp: "),
        ("    health: {http: /x}\n", "workers.mail.health.http: "),
    ],
    ids=["both", "nothing-to-time", "timeout", "newline", "empty", "port", "unknown"],
)
def test_bad_worker_health_is_one_line_naming_the_field(
    tmp_path: Path, health: str, expected: str
) -> None:
    found = problems(tmp_path, with_worker(health))
    assert len(found) == 1, found
    assert expected in found[0]


@pytest.mark.parametrize(
    "health", [EXEC + TIMINGS, "    health: {tcp: 5555}\n"], ids=["exec", "tcp"]
)
def test_worker_probes_pass_the_validators(tmp_path: Path, health: str) -> None:
    root = tmp_path / "out"
    write_tree(root, render(tmp_path, with_worker(health)))
    results = run_checks(root, "1.30.0", {**os.environ, "CI": "true"})
    checked = [r for r in results if r.tool in ("kubernetes-validate", "compose-spec schema")]
    assert {Path(r.target).name for r in checked} >= {"mail.yaml", "docker-compose.yaml"}
    assert [f"{r.tool} {r.target}: {r.detail}" for r in checked if r.status != "ok"] == []


def test_jobsprints_celery_probe_passes_the_rollout_strategy_item() -> None:
    plan = EXAMPLES / "guides" / "jobsprint.yaml"
    result = check("{kind: rollout-strategy}", Context(plan=plan))
    assert result.status == "pass", result.evidence
    [celery] = [line for line in result.evidence if line.startswith("celery ")]
    assert "readiness probes on 1 of 1 containers" in celery
