"""The real validators over every example and profile, and proof that they can fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scalectl.files import write_tree
from scalectl.plan import prepare, render_files
from scalectl.plan.validate import nginx_check_copy, run_checks
from tests.conftest import EXAMPLES

CI_ENV = {**os.environ, "CI": "true"}  # a missing validator is a failure here


def render_to(tmp_path: Path, example: Path, profile: str) -> Path:
    prepared = prepare(example, profile)
    write_tree(tmp_path, render_files(prepared))
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["production", "local"])
@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_examples_pass_every_validator(tmp_path: Path, example: Path, profile: str) -> None:
    root = render_to(tmp_path, example, profile)
    version = prepare(example, profile).loaded.plan.kubernetes_version
    results = run_checks(root, version, CI_ENV)
    assert results, "no checks ran"
    bad = [f"{r.tool} {r.target}: {r.detail}" for r in results if r.status != "ok"]
    assert not bad, "\n".join(bad)


def test_a_corrupted_rule_file_fails_promtool(tmp_path: Path) -> None:
    root = render_to(tmp_path, EXAMPLES / "small.yaml", "production")
    rules = root / "prometheus" / "alerts.rules.yml"
    rules.write_text(rules.read_text().replace("expr: ", "expr: sum(", 1))
    results = {(r.tool, Path(r.target).name): r for r in run_checks(root, "1.30.0", CI_ENV)}
    assert results[("promtool check rules", "alerts.rules.yml")].status == "failed"
    assert results[("promtool check rules", "slo.rules.yml")].status == "ok"


def test_a_broken_manifest_fails_kubernetes_validate(tmp_path: Path) -> None:
    root = render_to(tmp_path, EXAMPLES / "small.yaml", "production")
    manifest = root / "kubernetes" / "web.yaml"
    manifest.write_text(manifest.read_text().replace("containers:", "containerz:", 1))
    [result] = [r for r in run_checks(root, "1.30.0", CI_ENV) if r.target == str(manifest)]
    assert result.status == "failed"
    assert "'containers' is a required property" in result.detail


def test_gixy_reports_a_host_spoofing_config(tmp_path: Path) -> None:
    root = render_to(tmp_path, EXAMPLES / "small.yaml", "production")
    conf = root / "nginx" / "nginx.conf"
    conf.write_text(
        conf.read_text().replace(
            "proxy_set_header Host $host;", "proxy_set_header Host $http_host;"
        )
    )
    [result] = [r for r in run_checks(root, "1.30.0", CI_ENV) if r.tool == "gixy"]
    assert result.status == "failed"


def test_a_broken_compose_file_fails_the_schema(tmp_path: Path) -> None:
    root = render_to(tmp_path, EXAMPLES / "small.yaml", "production")
    compose = root / "compose" / "docker-compose.yaml"
    compose.write_text(compose.read_text() + "bogus_top_level: 1\n")
    [result] = [r for r in run_checks(root, "1.30.0", CI_ENV) if r.tool == "compose-spec schema"]
    assert result.status == "failed"


def test_nginx_check_copy_makes_dns_upstreams_resolvable() -> None:
    conf = (
        "error_log /var/log/nginx/error.log warn;\npid /run/nginx.pid;\nhttp {\n"
        "    upstream api {\n        server api:8000 max_fails=3;\n"
        "        server 10.0.0.1:8000;\n        server [::1]:8000;\n    }\n}\n"
    )
    copy = nginx_check_copy(conf)
    assert "server 127.0.0.1:8000 max_fails=3;" in copy
    assert "server 10.0.0.1:8000;" in copy
    assert "server [::1]:8000;" in copy
    assert "error_log logs/error.log warn;" in copy
    assert "pid nginx.pid;" in copy
    assert "    proxy_temp_path tmp/proxy;\n" in copy
