"""`plan --check` never runs a validator as root on untrusted files (issue 11, finding 1:
`include /some/file;` made nginx -t, run as root, print that file into the CI log). As
root, each validator runs as an unprivileged account on a private copy of the render."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scalectl.files import write_tree
from scalectl.plan import prepare, render_files
from scalectl.plan.sandbox import sandbox
from scalectl.plan.validate import run_checks
from tests.conftest import EXAMPLES, Result

Cli = Callable[..., Result]
CI_ENV = {**os.environ, "CI": "true"}
SECRET = "TOPSECRET_7f3a"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="the privilege drop happens as root")


@pytest.fixture
def secret() -> Iterator[Path]:
    """A root-only file (0600) in a directory anyone may pass through: only the file's own
    mode keeps an unprivileged reader out."""
    directory = Path(tempfile.mkdtemp(prefix="scalectl-secret-"))
    directory.chmod(0o755)
    path = directory / "secret.conf"
    path.write_text(f"{SECRET} on;\ngroups: {SECRET}\n")
    path.chmod(0o600)
    yield path
    shutil.rmtree(directory)


def rendered(tmp_path: Path) -> Path:
    write_tree(tmp_path / "out", render_files(prepare(EXAMPLES / "small.yaml", "production")))
    return tmp_path / "out"


def only(tool: str) -> Callable[[str, Path], bool]:
    return lambda name, _: name == tool


@root_only
def test_nginx_include_of_a_root_only_file_is_not_read(tmp_path: Path, secret: Path) -> None:
    out = rendered(tmp_path)
    conf = out / "nginx" / "nginx.conf"
    conf.write_text(conf.read_text().replace("http {\n", f"http {{\n    include {secret};\n", 1))
    [result] = run_checks(out, "1.30.0", CI_ENV, select=only("nginx -t"))
    assert result.status == "failed"
    assert f'open() "{secret}" failed (13: Permission denied)' in result.detail
    assert SECRET not in result.detail
    assert result.target == str(conf)


@root_only
def test_promtool_rule_files_of_a_root_only_file_are_not_read(tmp_path: Path, secret: Path) -> None:
    out = rendered(tmp_path)
    config = out / "prometheus" / "prometheus.yml"
    config.write_text(config.read_text().replace("rule_files:\n", f"rule_files:\n  - {secret}\n"))
    [result] = run_checks(out, "1.30.0", CI_ENV, select=only("promtool check config"))
    assert result.status == "failed"
    assert "permission denied" in result.detail
    assert SECRET not in result.detail


def test_a_normal_plan_still_passes_check(cli: Cli, tmp_path: Path) -> None:
    result = cli("plan", EXAMPLES / "small.yaml", "-o", tmp_path, "--check", env={"CI": "true"})
    assert result.code == 0, result.stdout + result.stderr


@root_only
def test_python_validators_run_unprivileged_too(tmp_path: Path) -> None:
    """gixy, kubernetes-validate and check-jsonschema are Python: they run as the account
    in an interpreter it can start (pyenv's is under a 0700 /root), never as root."""
    secret = tmp_path / "secret.json"
    secret.write_text(f'{{"{SECRET}": 1}}')
    secret.chmod(0o600)
    tmp_path.chmod(0o755)
    with sandbox(rendered(tmp_path), os.defpath) as box:
        assert box.python is not None, "no Python the validators' account may start"
        code, text = box.run_module("json.tool", [str(secret)])
    assert code != 0
    assert "Permission denied" in text
    assert SECRET not in text


def test_without_an_interpreter_python_validators_refuse_rather_than_run_as_root(
    tmp_path: Path,
) -> None:
    with sandbox(rendered(tmp_path), os.defpath) as box:
        code, text = dataclasses.replace(box, python=None).run_module("gixy", ["x.conf"])
    assert code == 126
    assert "validators never run as root" in text
