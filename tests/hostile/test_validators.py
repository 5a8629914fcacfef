"""`plan --check` never runs a validator as root on untrusted files (issue 11, finding 1:
`include /some/file;` made nginx -t, run as root, print that file into the CI log). As
root, each validator runs as an unprivileged account on a private copy of the render."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scalectl.files import write_tree
from scalectl.plan import prepare, render_files
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
