"""The environment the rendered Compose and Kubernetes files give the reference app.

The names the app reads come from its code (reference_app/), never from a list written
here: a setting added to refapp/settings.py fails these tests until scalectl.plan.appenv
renders it or lists it in APP_DEFAULTS with a reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from refapp.settings import Settings

from scalectl.plan import prepare, render_files
from scalectl.plan.appenv import (
    APP_DEFAULTS,
    CONTAINER_HOST,
    DRAMATIQ_ENV,
    METRICS_DIR,
    WEB_ONLY,
)
from tests.conftest import EXAMPLES, ROOT, fixture_path

APP = ROOT / "reference_app"
PLAN = EXAMPLES / "reference-app.yaml"
PROFILES = ["production", "local"]


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def names_read(path: Path) -> set[str]:
    """Env names a module reads: os.environ.get / os.getenv / os.environ[...] with a literal,
    and calls to the module's own helpers that pass their first argument to os.environ."""
    tree = ast.parse(path.read_text(), str(path))
    helpers = set()
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.args.args:
            first = fn.args.args[0].arg
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and _is_environ(node.func.value)
                    and node.args
                    and isinstance(node.args[0], ast.Name)
                    and node.args[0].id == first
                ):
                    helpers.add(fn.name)
    names = set()
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute):
                reads = _is_environ(func.value) or func.attr == "getenv"
            else:
                reads = isinstance(func, ast.Name) and func.id in helpers
            name = _literal(node.args[0]) if reads else None
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            name = _literal(node.slice)
        if name:
            names.add(name)
    return names


def app_settings() -> set[str]:
    """Every env name the app reads: refapp.settings.Settings' fields (each read from the
    variable its alias names) and direct os.environ reads anywhere in the app."""
    names = {field.alias or name for name, field in Settings.model_fields.items()}
    for path in [*APP.joinpath("refapp").rglob("*.py"), APP / "gunicorn.conf.py"]:
        names |= names_read(path)
    return names


@pytest.fixture(scope="module")
def read_by_app() -> set[str]:
    names = app_settings()
    # The scan itself works: the Settings fields and direct reads.
    assert {"HOST", "PORT", "DATABASE_URL", "WEB_CONCURRENCY", "DATABASE_PASSWORD_FILE"} <= names
    assert {"DATABASE_REPLICA_URLS", "CACHE_TTL_JOB", "SHED_MAX_IN_FLIGHT"} <= names
    return names


def rendered(profile: str, plan: Path = PLAN) -> dict[str, Any]:
    files = render_files(prepare(plan, profile))
    return {
        rel: [d for d in yaml.safe_load_all(content) if d]
        for rel, content in files.items()
        if rel.startswith(("compose/", "kubernetes/"))
    }


def k8s_container(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return pod, container


def k8s_env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def containers(profile: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, where, env) of every app and worker container in the rendered files."""
    files = rendered(profile)
    compose = files["compose/docker-compose.yaml"][0]["services"]
    out = [
        ("service", "compose api", compose["api"]["environment"]),
        ("worker", "compose jobs", compose["jobs"]["environment"]),
    ]
    out.append(
        ("service", "kubernetes api", k8s_env(k8s_container(files["kubernetes/api.yaml"])[1]))
    )
    out.append(
        ("worker", "kubernetes jobs", k8s_env(k8s_container(files["kubernetes/jobs.yaml"])[1]))
    )
    return out


@pytest.mark.parametrize("profile", PROFILES)
def test_every_setting_the_app_reads_is_rendered_or_left_to_its_default(
    profile: str, read_by_app: set[str]
) -> None:
    defaults = set(APP_DEFAULTS)
    assert defaults <= read_by_app, (
        f"APP_DEFAULTS names what the app no longer reads: {defaults - read_by_app}"
    )
    for kind, where, env in containers(profile):
        not_needed = defaults | (set(WEB_ONLY) if kind == "worker" else set())
        missing = read_by_app - set(env) - not_needed
        assert not missing, f"{where}: read by the app, neither rendered nor in APP_DEFAULTS"
        both = defaults & set(env)
        assert not both, f"{where}: rendered and also listed in APP_DEFAULTS"
        # Nothing rendered that nobody reads (the reference plan sets no env of its own).
        unread = set(env) - read_by_app - set(DRAMATIQ_ENV)
        assert not unread, f"{where}: rendered, read by nobody"


@pytest.mark.parametrize("profile", PROFILES)
def test_the_app_listens_on_every_interface_on_the_plan_port(profile: str) -> None:
    files = rendered(profile)
    plan = prepare(PLAN, profile).loaded.plan
    port = str(plan.services["api"].port)
    compose = files["compose/docker-compose.yaml"][0]["services"]["api"]
    assert compose["environment"]["HOST"] == CONTAINER_HOST == "0.0.0.0"
    assert compose["environment"]["PORT"] == port
    assert compose["expose"] == [port]
    _, container = k8s_container(files["kubernetes/api.yaml"])
    env = k8s_env(container)
    assert env["HOST"] == "0.0.0.0"
    assert env["PORT"] == port
    assert container["ports"][0]["containerPort"] == int(port)
    # Both run the image the plan names, the one reference_app/Dockerfile builds.
    images = {compose["image"], container["image"]}
    images |= {k8s_container(files["kubernetes/jobs.yaml"])[1]["image"]}
    assert images == {"ghcr.io/scalectl/refapp:0.1.0"}


def test_secrets_stay_in_files_and_writable_paths_are_mounted() -> None:
    files = rendered("production")
    compose = files["compose/docker-compose.yaml"][0]
    for name in ("api", "jobs"):
        service = compose["services"][name]
        env = service["environment"]
        assert not any("PASSWORD" in k and not k.endswith("_FILE") for k in env), name
        assert re.fullmatch(r"postgresql://app@[a-z]+:\d+/refapp", env["DATABASE_URL"])
        [secret] = service["secrets"]
        assert env["DATABASE_PASSWORD_FILE"] == f"/run/secrets/{secret}"
        assert secret in compose["secrets"]
        assert service["read_only"] is True
        assert env["PROMETHEUS_MULTIPROC_DIR"] == METRICS_DIR
        assert METRICS_DIR in service["tmpfs"]
    for rel in ("kubernetes/api.yaml", "kubernetes/jobs.yaml"):
        pod, container = k8s_container(files[rel])
        env = k8s_env(container)
        assert env["DATABASE_URL"] == {"secretKeyRef": {"name": "refapp-database", "key": "url"}}
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        secret_dir, _, key = env["DATABASE_PASSWORD_FILE"].rpartition("/")
        assert key in {i["path"] for i in mounts[secret_dir]["secret"]["items"]}
        assert "emptyDir" in mounts[env["PROMETHEUS_MULTIPROC_DIR"]]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_image_agrees_with_the_rendered_files() -> None:
    """The Dockerfile's defaults match what the rendered files set, so the image behaves the
    same under `docker run` as under Compose or Kubernetes."""
    text = re.sub(r"\\\n", " ", (APP / "Dockerfile").read_text())
    env = dict(re.findall(r"\b([A-Z_]+)=(\S+)", " ".join(re.findall(r"^ENV (.*)$", text, re.M))))
    assert env["HOST"] == CONTAINER_HOST
    assert env["PROMETHEUS_MULTIPROC_DIR"] == METRICS_DIR
    files = rendered("production")
    pod, _ = k8s_container(files["kubernetes/api.yaml"])
    compose = files["compose/docker-compose.yaml"][0]["services"]["api"]
    [user] = re.findall(r"^USER (\S+)$", text, re.M)
    assert (
        user
        == compose["user"]
        == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    )
    [expose] = re.findall(r"^EXPOSE (\d+)$", text, re.M)
    assert expose == env["PORT"] == compose["environment"]["PORT"]


def test_plan_env_is_escaped_for_each_target(tmp_path: Path) -> None:
    plan = yaml.safe_load(PLAN.read_text())
    odd = 'a$b $(HOME) $$ "q" \\ z'
    # "on" would be read as a boolean key by a YAML 1.1 parser if it were not quoted.
    plan["services"]["api"]["env"] = {"EXTRA": odd, "on": "1", "LOG_LEVEL": "debug"}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    files = rendered("production", path)
    compose = files["compose/docker-compose.yaml"][0]["services"]["api"]["environment"]
    assert compose["EXTRA"] == odd.replace("$", "$$")  # Compose interpolates "$"
    assert compose["on"] == "1"
    assert compose["LOG_LEVEL"] == "debug"
    env = k8s_env(k8s_container(files["kubernetes/api.yaml"])[1])
    # Kubernetes expands "$(VAR)" and reduces "$$" to "$": every "$" doubled reads back as
    # written in the container.
    assert env["EXTRA"] == odd.replace("$", "$$")
    assert env["on"] == "1"
    assert list(env)[-3:] == ["EXTRA", "LOG_LEVEL", "on"]  # the plan's env comes last


def test_a_plan_env_key_replaces_the_generated_one(tmp_path: Path) -> None:
    plan = yaml.safe_load(PLAN.read_text())
    plan["services"]["api"]["env"] = {"HOST": "[::]"}  # IPv6: gunicorn binds [::]:8000
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    files = rendered("production", path)
    env = k8s_env(k8s_container(files["kubernetes/api.yaml"])[1])
    assert env["HOST"] == "[::]"
    assert list(env).count("HOST") == 1


@pytest.mark.parametrize("profile", PROFILES)
def test_the_shedding_limit_comes_from_capacity_and_the_latency_objective(profile: str) -> None:
    prepared = prepare(PLAN, profile)
    plan = prepared.loaded.plan
    size = next(s for s in prepared.sizing.services if s.name == "api")
    # Little's law per worker at the measured capacity and the p95 objective; free tier
    # from half of it, premium (2x) up to all of it.
    per_worker = plan.services["api"].capacity.per_replica_rps / size.processes
    expected = -(-per_worker * plan.slo.latency.p95_ms / 1000 // 2)
    compose = rendered(profile)["compose/docker-compose.yaml"][0]["services"]["api"]
    assert compose["environment"]["SHED_MAX_IN_FLIGHT"] == str(int(expected))
    assert int(expected) >= 4


def test_a_workload_without_a_database_gets_no_pool_url_or_password() -> None:
    # thumbnails has db_time_ms: 0 and the resize worker db_time_fraction: 0: with no pool
    # settings the app would open its default pool, uncounted, so they get no URL either.
    files = rendered("production", fixture_path("plans", "no-db-service.yaml"))
    compose = files["compose/docker-compose.yaml"][0]["services"]
    assert {"DATABASE_URL", "DATABASE_POOL_MAX"} <= set(compose["api"]["environment"])
    assert "pgbouncer" in compose["api"]["depends_on"]
    for name in ("thumbnails", "resize"):
        service = compose[name]
        assert not [k for k in service["environment"] if k.startswith("DATABASE_")], name
        assert "secrets" not in service, name
        assert "pgbouncer" not in service.get("depends_on", {}), name
        pod, container = k8s_container(files[f"kubernetes/{name}.yaml"])
        assert not [k for k in k8s_env(container) if k.startswith("DATABASE_")], name
        assert "database-secret" not in {v["name"] for v in pod["volumes"]}, name
    pod, container = k8s_container(files["kubernetes/api.yaml"])
    assert k8s_env(container)["DATABASE_POOL_MAX"] == "4"
    assert "database-secret" in {v["name"] for v in pod["volumes"]}
