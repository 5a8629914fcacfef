"""The health config file: endpoints, conditions and defaults, validated as file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalectl.errors import InputError
from scalectl.health.checks import default_checks
from scalectl.health.config import config_checks, load_config
from scalectl.health.targets import PlanFacts, Target
from tests.conftest import fixture_path

INSTANCE = Target("api-1", "http://127.0.0.1:18000", "instance")
BALANCER = Target("nginx", "http://127.0.0.1:8080", "balancer")


def test_loads_the_example_and_expands_paths_over_targets() -> None:
    config = load_config(fixture_path("health", "health.yaml"))
    assert config.defaults.timeout == 2.0 and config.defaults.failure_threshold == 2
    assert config.needs_targets
    checks = config_checks(config, [INSTANCE, BALANCER], PlanFacts())
    assert [(c.target.name, c.name, c.url) for c in checks] == [
        ("api-1", "ready", "http://127.0.0.1:18000/health/ready"),
        ("nginx", "ready", "http://127.0.0.1:8080/health/ready"),
        ("api-1", "queues", "http://127.0.0.1:18000/metrics"),
    ]
    assert [c.text for c in checks[0].conditions] == [
        "[STATUS] == 200",
        "[BODY].status == pass",
        "len([BODY].checks) > 0",
    ]


def test_url_endpoints_and_default_conditions(tmp_path: Path) -> None:
    path = tmp_path / "h.yaml"
    path.write_text(
        "version: 1\nendpoints:\n"
        "  - url: http://127.0.0.1:9/metrics\n"
        "    timeout: 500ms\n"
        "    headers: {X-A: b}\n"
    )
    config = load_config(path)
    assert not config.needs_targets
    (check,) = config_checks(config, [], PlanFacts(error_rate=0.05))
    assert (check.name, check.target.name, check.timeout) == (
        "http://127.0.0.1:9/metrics",
        "127.0.0.1:9",
        0.5,
    )
    assert check.headers == (("X-A", "b"),)
    assert check.conditions[1].text.endswith("<= 0.05")  # /metrics defaults: the 5xx share


def test_every_problem_is_reported_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "version: 1\n"
        "defaults:\n"
        "  timout: 5s\n"
        "  interval: soon\n"
        "endpoints:\n"
        "  - name: a\n"
        "    path: /health\n"
        "    url: http://x/\n"
        "  - url: ftp://x/\n"
        "    conditions: ['[STATUS] = 200', '[BODY].status == pass']\n"
        "  - path: health\n"
        "    targets: everything\n"
    )
    with pytest.raises(InputError) as info:
        load_config(path)
    # Schema problems do not hide the others: the URL and the condition are in the list.
    assert info.value.message == f"{path}: 7 problems"
    assert list(info.value.lines) == [
        f"{path}:3:3 defaults.timout: unknown key; did you mean 'timeout'?",
        f"{path}:4:13 defaults.interval: expected a duration such as 500ms, 5s, 2m, 1h30m or "
        "7d, got 'soon'",
        f"{path}:6:5 endpoints[0]: set exactly one of 'url' or 'path'",
        f"{path}:9:10 endpoints[1].url: bad URL 'ftp://x/': expected http://, https://, "
        "tcp://, tls:// or dns:// and a host",
        f'{path}:10:18 endpoints[1].conditions[0]: "[STATUS] = 200", column 10: unknown '
        "operator '='; use == to compare",
        f"{path}:11:11 endpoints[2].path: must match pattern '^/'",
        f"{path}:12:14 endpoints[2].targets: must be 'all', 'instances' or 'balancer'",
    ]


def test_bad_urls_and_conditions_after_the_schema_passes(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "version: 1\n"
        "endpoints:\n"
        "  - url: ftp://x/\n"
        "    conditions:\n"
        "      - '[STATUS] = 200'\n"
        "      - '[BODY].status == pass'\n"
        "  - path: /health\n"
        "    conditions: []\n"
    )
    with pytest.raises(InputError) as info:
        load_config(path)
    assert list(info.value.lines) == [
        f"{path}:3:10 endpoints[0].url: bad URL 'ftp://x/': expected http://, https://, "
        "tcp://, tls:// or dns:// and a host",
        f'{path}:5:9 endpoints[0].conditions[0]: "[STATUS] = 200", column 10: unknown '
        "operator '='; use == to compare",
        f"{path}:8:17 endpoints[1].conditions: must list at least one",
    ]


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n")
    with pytest.raises(InputError) as info:
        load_config(path)
    assert info.value.message == (
        f"{path}:1:1: a health config is a YAML mapping starting with 'version: 1'"
    )


def test_default_checks_per_target_kind() -> None:
    url = Target("h:1", "http://h:1", "url")
    exact = Target("h:2", "http://h:2", "url", "/healthz")
    checks = default_checks([INSTANCE, BALANCER, url, exact], PlanFacts())
    # The reference app's /health* endpoints and /metrics (docs/health.md "Defaults").
    assert [c.url for c in checks] == [
        "http://127.0.0.1:18000/health",
        "http://127.0.0.1:18000/health/ready",
        "http://127.0.0.1:18000/health/comprehensive",
        "http://127.0.0.1:18000/metrics",
        "http://127.0.0.1:8080/health/ready",
        "http://h:1/health",
        "http://h:1/health/ready",
        "http://h:1/health/comprehensive",
        "http://h:1/metrics",
        "http://h:2/healthz",
    ]
    assert [c.text for c in checks[0].conditions] == ["[STATUS] == 200"]
    assert [c.text for c in checks[2].conditions] == ["[STATUS] == 200"]


def test_headers_that_cannot_be_sent_are_bad_input_with_their_place(tmp_path: Path) -> None:
    path = tmp_path / "h.yaml"
    path.write_text(
        "version: 1\n"
        'defaults: {headers: {"bad name": x, X-Ok: fine}}\n'
        "endpoints:\n"
        "  - url: http://127.0.0.1:9/health\n"
        '    headers: {X-Multi: "a\\nb"}\n'
    )
    with pytest.raises(InputError) as info:
        load_config(path)
    assert list(info.value.lines) == [
        f"{path}:2:22 defaults.headers.bad name: 'bad name' is not a header name (letters, "
        "digits and !#$%&'*+.^_`|~- only)",
        f"{path}:5:24 endpoints[0].headers.X-Multi: the value of X-Multi holds '\\n': a "
        "header value cannot hold line breaks or control characters",
    ]
