"""Issue 11, finding 4 (input limits): hostile plan files exit 2 with a located message,
quickly and without a traceback, instead of exhausting memory, hanging or crashing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scalectl.checklist import load_answers, load_checklist
from scalectl.errors import ExitCode, InputError
from scalectl.health.config import load_config
from scalectl.inputlimit import MAX_FILE_BYTES
from scalectl.loadtest.slo import load_slo_file
from scalectl.yamlsource import MAX_DEPTH
from tests.conftest import EXAMPLES, Result

Cli = Callable[..., Result]
SMALL = (EXAMPLES / "small.yaml").read_text()
SCALECTL = Path(sys.prefix) / "bin" / "scalectl"


def plan_with(tmp_path: Path, old: str, new: str) -> Path:
    assert SMALL.count(old) == 1, old
    path = tmp_path / "plan.yaml"
    path.write_text(SMALL.replace(old, new))
    return path


def refused(cli: Cli, tmp_path: Path, plan: Path) -> Result:
    out = tmp_path / "out"
    result = cli("plan", plan, "--out", out)
    assert result.code == ExitCode.BAD_INPUT, (result.code, result.stderr)
    assert "Traceback" not in result.stderr
    assert not out.exists()
    return result


def test_an_alias_bomb_is_refused_quickly(cli: Cli, tmp_path: Path) -> None:
    levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        prev = ", ".join([f"*a{i - 1}"] * 10)
        levels.append(f"a{i}: &a{i} [{prev}]")
    path = tmp_path / "bomb.yaml"
    path.write_text(SMALL + "bomb:\n" + "".join(f"  {line}\n" for line in levels))
    started = time.monotonic()
    result = refused(cli, tmp_path, path)
    assert time.monotonic() - started < 10
    assert f"{path}:" in result.stderr
    assert "more than 100000 values" in result.stderr


def test_a_recursive_alias_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text(SMALL + "loop: &loop [*loop]\n")
    result = refused(cli, tmp_path, path)
    assert f"nested deeper than {MAX_DEPTH} levels" in result.stderr


def test_a_10000_deep_list_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(SMALL + "deep: " + "[" * 10_000 + "]" * 10_000 + "\n")
    result = refused(cli, tmp_path, path)
    line = SMALL.count("\n") + 1
    assert f"{path}:{line}:" in result.stderr
    assert "nest" in result.stderr  # libyaml stops at 1,000 levels, before our own limit


def test_nesting_over_our_limit_is_refused(cli: Cli, tmp_path: Path) -> None:
    depth = MAX_DEPTH + 1
    path = tmp_path / "deep.yaml"
    path.write_text(SMALL + "deep: " + "[" * depth + "]" * depth + "\n")
    result = refused(cli, tmp_path, path)
    assert f"nested deeper than {MAX_DEPTH} levels" in result.stderr


def test_a_5000_digit_integer_is_located(cli: Cli, tmp_path: Path) -> None:
    path = plan_with(tmp_path, "port: 8000", "port: " + "9" * 5000)
    result = refused(cli, tmp_path, path)
    assert f"{path}:9:11 services.web.port: number longer than" in result.stderr


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("peak_rps: 60", "peak_rps: .inf", "10:25 services.web.traffic.peak_rps"),
        ("peak_rps: 60", "peak_rps: .nan", "10:25 services.web.traffic.peak_rps"),
        (
            "per_replica_rps: 120",
            "per_replica_rps: 1e400",
            "12:24 services.web.capacity.per_replica_rps: must be a finite",
        ),
        (
            "mean_latency_ms: 35",
            "mean_latency_ms: .inf",
            "14:24 services.web.capacity.mean_latency_ms: must be a finite",
        ),
        ("headroom: 1.5", "headroom: .inf", "10:39 services.web.traffic.headroom"),
        ("per_ip: {rps: 10,", "per_ip: {rps: .inf,", "35:19 load_balancer.rate_limits.per_ip.rps"),
        ("p95_ms: 400", "p95_ms: .inf", "39:21 slo.latency.p95_ms"),
    ],
)
def test_numbers_are_finite(cli: Cli, tmp_path: Path, old: str, new: str, where: str) -> None:
    path = plan_with(tmp_path, old, new)
    result = refused(cli, tmp_path, path)
    assert f"{path}:{where}" in result.stderr


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (
            "port: 8000",
            "port: 70000",
            "9:11 services.web.port: must be less than or equal to 65535",
        ),
        ("port: 8000", "port: 0", "9:11 services.web.port: must be greater than or equal to 1"),
        (
            "replicas: {min: 2, max: 4}",
            "replicas: {min: 2, max: 1000000000}",
            "19:29 services.web.replicas.max: must be less than or equal to 10000",
        ),
        (
            "keys: 50000",
            "keys: 10000000000000",
            "27:9 cache.keys: must be less than or equal to 1000000000000",
        ),
        (
            "cores: 2,",
            "cores: 100000,",
            "23:20 database.primary.cores: must be less than or equal to 1024",
        ),
    ],
)
def test_numbers_have_bounds(cli: Cli, tmp_path: Path, old: str, new: str, where: str) -> None:
    path = plan_with(tmp_path, old, new)
    result = refused(cli, tmp_path, path)
    assert f"{path}:{where}" in result.stderr


def test_a_file_over_the_limit_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(SMALL + "#" * MAX_FILE_BYTES + "\n")
    result = refused(cli, tmp_path, path)
    assert f"{path}: larger than the {MAX_FILE_BYTES}-byte limit" in result.stderr


def test_the_size_limit_is_configurable(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(SMALL + "#" * MAX_FILE_BYTES + "\n")
    raised = {"SCALECTL_MAX_INPUT_BYTES": str(2 * MAX_FILE_BYTES)}
    assert cli("plan", path, "--out", tmp_path / "out", env=raised).code == 0
    lowered = cli(
        "plan", path, "--out", tmp_path / "out2", env={"SCALECTL_MAX_INPUT_BYTES": "2048"}
    )
    assert lowered.code == 2 and "2048-byte limit" in lowered.stderr
    bad = cli("plan", path, "--out", tmp_path / "out3", env={"SCALECTL_MAX_INPUT_BYTES": "1e9"})
    assert (
        bad.code == 2 and "SCALECTL_MAX_INPUT_BYTES=1e9: expected a number of bytes" in bad.stderr
    )


def test_dev_zero_is_refused(cli: Cli, tmp_path: Path) -> None:
    result = refused(cli, tmp_path, Path("/dev/zero"))
    assert "/dev/zero: not a regular file" in result.stderr


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "plan.yaml"
    os.mkfifo(fifo)
    # A subprocess, so a regression hangs only it: nothing ever writes to the FIFO.
    proc = subprocess.run(
        [str(SCALECTL), "plan", str(fifo), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == ExitCode.BAD_INPUT, proc.stderr
    assert f"{fifo}: not a regular file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_yaml_input_shares_the_limits(tmp_path: Path) -> None:
    """SLO files, health configs, checklists and answers go through the same reader."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 100 + "]" * 100 + "\n")
    checklist = load_checklist("pre")
    loaders: list[Callable[[Path], object]] = [
        load_slo_file,
        load_config,
        load_checklist,
        lambda p: load_answers(p, checklist),
    ]
    for loader in loaders:
        for path, message in [(fifo, "not a regular file"), (deep, "nested deeper than")]:
            with pytest.raises(InputError) as info:
                loader(path)
            assert message in info.value.message


def test_slo_and_health_numbers_are_finite(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("version: 1\nglobal:\n  p95_ms: .inf\n")
    with pytest.raises(InputError) as info:
        load_slo_file(slo)
    assert f"{slo}:3:11 global.p95_ms: must be a finite number" in "\n".join(info.value.lines)
    health = tmp_path / "health.yaml"
    health.write_text("version: 1\ndefaults:\n  timeout: .inf\nendpoints:\n  - path: /health\n")
    with pytest.raises(InputError) as info:
        load_config(health)
    assert f"{health}:3:12 defaults.timeout: must be a finite number" in "\n".join(info.value.lines)
