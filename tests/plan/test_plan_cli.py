"""`scalectl plan` end to end, in-process, through the real error handler."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml

from scalectl.errors import ExitCode
from tests.conftest import EXAMPLES, Result, fixture_path, tree

Cli = Callable[..., Result]
MULTI = EXAMPLES / "multi-tier.yaml"


def test_render_writes_every_config(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("plan", MULTI, "--out", out)
    assert result.code == 0, result.stderr
    files = set(tree(out))
    assert {
        "nginx/nginx.conf",
        "compose/docker-compose.yaml",
        "kubernetes/api.yaml",
        "kubernetes/admin.yaml",
        "kubernetes/analysis.yaml",
        "kubernetes/namespace.yaml",
        "kubernetes/loadtest.yaml",
        "prometheus/alerts.rules.yml",
        "prometheus/slo.rules.yml",
        "prometheus/rules.test.yml",
        "prometheus/prometheus.yml",
        "alertmanager/alertmanager.yml",
        "grafana/dashboard.json",
        "grafana/loadtest-dashboard.json",
        "pgbouncer/pgbouncer.ini",
        "sizing.json",
    } <= files
    sizing = json.loads((out / "sizing.json").read_text())
    assert sizing["feasible"] is True
    assert [s["replicas"] for s in sizing["services"]] == [7, 2]
    assert "Sizing: cv-platform (production)" in result.stdout
    assert f"wrote {len(files) - 1} files to {out}" in result.stdout
    assert "\x1b[" not in result.stdout  # NO_COLOR / not a TTY: no escape codes


def test_render_is_deterministic(cli: Cli, tmp_path: Path) -> None:
    assert cli("plan", MULTI, "-o", tmp_path / "a").code == 0
    assert cli("plan", MULTI, "-o", tmp_path / "b").code == 0
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_explicit_render_subcommand_and_options_first(cli: Cli, tmp_path: Path) -> None:
    assert cli("plan", "render", MULTI, "-o", tmp_path / "a").code == 0
    assert cli("plan", "--out", tmp_path / "b", MULTI).code == 0
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_several_plans_go_to_subdirectories(cli: Cli, tmp_path: Path) -> None:
    result = cli("plan", *sorted(EXAMPLES.glob("*.yaml")), "--out", tmp_path)
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "custom-sli",
        "high-traffic",
        "multi-tier",
        "reference-app",
        "small",
    ]


def test_json_output(cli: Cli, tmp_path: Path) -> None:
    result = cli("plan", MULTI, "-o", tmp_path / "o", "--json")
    assert result.code == 0
    payload = json.loads(result.stdout)
    assert payload["ok"] is True
    [item] = payload["results"]
    assert item["profile"] == "production"
    assert "nginx/nginx.conf" in item["files"]
    assert item["sizing"]["services"][0]["name"] == "api"


def test_local_profile_targets_loopback(cli: Cli, tmp_path: Path) -> None:
    assert cli("plan", MULTI, "--profile", "local", "-o", tmp_path).code == 0
    conf = (tmp_path / "nginx" / "nginx.conf").read_text()
    assert "listen 127.0.0.1:8080 default_server;" in conf
    assert "server 127.0.0.1:18000 max_fails=3 fail_timeout=10s;" in conf
    assert "server 127.0.0.1:18001 max_fails=3 fail_timeout=10s;" in conf
    assert "server 127.0.0.1:18100 " in conf  # the second service's port block


def test_diff_reports_changes_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli("plan", MULTI, "-o", out).code == 0
    same = cli("plan", MULTI, "-o", out, "--diff")
    assert same.code == 0 and "up to date" in same.stdout

    changed_plan = tmp_path / "plan.yaml"
    changed_plan.write_text(MULTI.read_text().replace("keepalive: 64", "keepalive: 16"))
    before = tree(out)
    result = cli("plan", changed_plan, "-o", out, "--diff")
    assert result.code == ExitCode.CHECK_FAILED
    assert "-        keepalive 64;\n+        keepalive 16;\n" in result.stdout
    assert tree(out) == before


def test_stale_files_from_a_previous_render_are_removed(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "mine.txt").parent.mkdir(parents=True)
    (out / "mine.txt").write_text("not ours")
    assert cli("plan", MULTI, "-o", out).code == 0
    assert (out / "kubernetes" / "admin.yaml").exists()
    smaller = tmp_path / "plan.yaml"
    data = yaml.safe_load(MULTI.read_text())
    del data["services"]["admin"]
    smaller.write_text(yaml.safe_dump(data))
    assert cli("plan", smaller, "-o", out).code == 0
    assert not (out / "kubernetes" / "admin.yaml").exists()
    assert (out / "mine.txt").read_text() == "not ours"  # never ours to delete


def test_infeasible_plan_exits_1_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        MULTI.read_text().replace("replicas: {min: 3, max: 12}", "replicas: {min: 3, max: 5}")
    )
    out = tmp_path / "out"
    result = cli("plan", plan, "-o", out)
    assert result.code == ExitCode.CHECK_FAILED
    assert "infeasible: services.api: needs 7 replicas for 1800 rps" in result.stderr
    assert not out.exists()


BAD_INPUTS = {
    "malformed": ("name: cv-platform", "name: [cv-platform"),
    "wrong-type": ("peak_rps: 1200", "peak_rps: many"),
    "unknown-key": ("headroom: 1.5", "hedroom: 1.5"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_one_line_per_problem_nothing_written(
    cli: Cli, tmp_path: Path, case: str
) -> None:
    old, new = BAD_INPUTS[case]
    plan = tmp_path / "plan.yaml"
    plan.write_text(MULTI.read_text().replace(old, new, 1))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("x")
    result = cli("plan", plan, "-o", out)
    assert result.code == ExitCode.BAD_INPUT
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ")
    assert all(line.startswith(str(plan) + ":") for line in lines[1:])
    assert tree(out) == {"keep": b"x"}


def test_unknown_key_message_is_exact(cli: Cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(MULTI.read_text().replace("headroom: 1.5", "hedroom: 1.5", 1))
    result = cli("plan", plan, "-o", tmp_path / "out")
    assert result.stderr.splitlines() == [
        "error: 1 problem in the input",
        f"{plan}:13:7 services.api.traffic.hedroom: unknown key; did you mean 'headroom'?",
    ]


def test_missing_plan_file(cli: Cli, tmp_path: Path) -> None:
    result = cli("plan", tmp_path / "nope.yaml", "-o", tmp_path / "out")
    assert result.code == ExitCode.BAD_INPUT
    assert f"{tmp_path / 'nope.yaml'}: no such file" in result.stderr


def test_problems_from_several_plans_are_reported_together(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MULTI.read_text().replace("peak_rps: 1200", "peak_rps: -1"))
    result = cli("plan", bad, tmp_path / "missing.yaml", MULTI, "-o", tmp_path / "out")
    assert result.code == ExitCode.BAD_INPUT
    assert "services.api.traffic.peak_rps: must be greater than 0" in result.stderr
    assert "missing.yaml: no such file" in result.stderr
    assert not (tmp_path / "out").exists()


def test_output_path_that_is_a_file(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = cli("plan", MULTI, "-o", target)
    assert result.code == ExitCode.BAD_INPUT
    assert f"{target}: output path is a file, expected a directory" in result.stderr
    assert target.read_text() == "x"


def test_unwritable_output_directory(cli: Cli, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/scalectl-test-out")  # not writable even for root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "out"
    result = cli("plan", MULTI, "-o", target)
    assert result.code == ExitCode.BAD_INPUT
    assert "Traceback" not in result.stderr
    assert str(target.parent) in result.stderr or str(target) in result.stderr


def test_unknown_option_is_a_usage_error(cli: Cli) -> None:
    result = cli("plan", MULTI, "--frobnicate")
    assert result.code == ExitCode.BAD_INPUT
    assert "No such option: --frobnicate" in result.stderr


def test_init_writes_a_valid_starter_and_refuses_to_overwrite(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    assert cli("plan", "init", path).code == 0
    assert path.read_text().startswith("# yaml-language-server: $schema=")
    assert cli("plan", path, "-o", tmp_path / "out").code == 0
    again = cli("plan", "init", path)
    assert again.code == ExitCode.BAD_INPUT
    assert "already exists; pass --force" in again.stderr
    assert cli("plan", "init", path, "--force").code == 0


def test_schema_validates_every_example(cli: Cli, tmp_path: Path) -> None:
    result = cli("plan", "schema")
    assert result.code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for example in EXAMPLES.glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(example.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": 1, "name": "x", "bogus": 1}, schema)
    assert cli("plan", "schema", "-o", tmp_path / "s.json").code == 0
    assert json.loads((tmp_path / "s.json").read_text()) == schema


def test_check_runs_the_real_validators(cli: Cli, tmp_path: Path) -> None:
    result = cli("plan", MULTI, "-o", tmp_path, "--check", "--json", env={"CI": "true"})
    payload = json.loads(result.stdout)
    checks = payload["results"][0]["checks"]
    failed = [c for c in checks if c["status"] != "ok"]
    assert result.code == 0, failed
    tools = {c["tool"] for c in checks}
    assert tools == {
        "nginx -t",
        "gixy",
        "promtool check rules",
        "promtool test rules",
        "promtool check config",
        "amtool check-config",
        "kubernetes-validate",
        "compose-spec schema",
    }


def test_check_fails_when_a_validator_rejects_the_output(cli: Cli, tmp_path: Path) -> None:
    # A listen address nginx cannot parse reaches nginx -t (the schema allows any port).
    plan = tmp_path / "plan.yaml"
    plan.write_text(MULTI.read_text().replace("listen: 0.0.0.0:80", "listen: 0.0.0.0:99999"))
    result = cli("plan", plan, "-o", tmp_path / "out", "--check")
    assert result.code == ExitCode.CHECK_FAILED
    assert "nginx -t" in result.stderr
    assert "invalid port" in result.stderr


def test_missing_tool_is_skipped_or_fails_under_ci(cli: Cli, tmp_path: Path) -> None:
    # An empty PATH hides promtool and amtool (nginx is still found in /usr/sbin).
    no_path = {"PATH": str(tmp_path / "empty")}
    result = cli("plan", MULTI, "-o", tmp_path / "a", "--check", env=no_path)
    assert result.code == 0, result.stderr
    assert "skipped: promtool not installed" in result.stdout
    strict = cli("plan", MULTI, "-o", tmp_path / "b", "--check", env={**no_path, "CI": "true"})
    assert strict.code == ExitCode.CHECK_FAILED
    assert "promtool not installed (CI=true)" in strict.stderr


def test_fixture_plan_renders(cli: Cli, tmp_path: Path) -> None:
    shutil.copy(fixture_path("plans", "minimal.yaml"), tmp_path / "p.yaml")
    text = (tmp_path / "p.yaml").read_text().replace("max: 5}", "max: 4}")
    (tmp_path / "p.yaml").write_text(text)
    result = cli("plan", tmp_path / "p.yaml", "-o", tmp_path / "out")
    assert result.code == 0, result.stderr
    assert not (tmp_path / "out" / "pgbouncer").exists()


def test_busy_connections_are_one_figure_in_the_summary_and_the_warning(
    cli: Cli, tmp_path: Path
) -> None:
    # 1000 rps × 26.5 ms = 26.5 busy connections, above 4 per core on 6 cores. The warning
    # once formatted it with :.0f (26, half to even) while the summary rounded up (27).
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        fixture_path("plans", "minimal.yaml")
        .read_text()
        .replace("headroom: 1.2", "headroom: 1.0")
        .replace("db_time_ms: 20", "db_time_ms: 26.5")
        .replace("cores: 8", "cores: 6")
        .replace("pool: {min: 1, max: 5}", "pool: {min: 1, max: 5}\n  pgbouncer: {enabled: true}")
    )
    result = cli("plan", plan, "-o", tmp_path / "out")
    assert result.code == 0, result.stderr
    output = result.stdout + result.stderr
    assert "27 busy at peak" in output
    assert "database: 27 busy connections at peak on 6 cores" in output
    assert "26 busy" not in output
