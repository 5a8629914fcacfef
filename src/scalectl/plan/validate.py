"""Run the real validators over a rendered directory: nginx, gixy, promtool, amtool,
kubernetes-validate and the compose-spec schema. A missing tool is skipped, or failed
under CI=true (issue 2: "under CI a missing tool is a failure")."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Status = Literal["ok", "failed", "skipped"]
TIMEOUT = 120
# Debian puts nginx in /usr/sbin, which is not on an ordinary user's PATH.
_EXTRA_PATH = os.pathsep.join(["/usr/sbin", "/usr/local/sbin", "/sbin"])


@dataclass(frozen=True)
class CheckResult:
    tool: str
    target: str
    status: Status
    detail: str = ""


class _Missing(Exception):
    pass


def which(tool: str, environ: Mapping[str, str]) -> str | None:
    """A tool from PATH, Debian's sbin directories, or the venv scalectl runs in."""
    path = os.pathsep.join([environ.get("PATH", ""), _EXTRA_PATH, str(Path(sys.executable).parent)])
    return shutil.which(tool, path=path)


def find(tool: str, environ: Mapping[str, str]) -> str:
    found = which(tool, environ)
    if not found:
        raise _Missing(tool)
    return found


def module_command(module: str) -> list[str] | None:
    """`python -m module` in the interpreter scalectl runs in, or None when not installed."""
    if importlib.util.find_spec(module) is None:
        return None
    return [sys.executable, "-m", module]


def _python_tool(module: str) -> list[str]:
    command = module_command(module)
    if command is None:
        raise _Missing(module.replace("_", "-"))
    return command


def _run(cmd: list[str], cwd: Path | None = None) -> tuple[int, str]:
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            env={**os.environ, "NO_COLOR": "1"},
        )
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {TIMEOUT}s"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _summary(text: str, limit: int = 12) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


def nginx_check_copy(conf: str) -> str:
    """The rendered config made testable here: upstream host names resolved to loopback
    (nginx -t resolves every upstream host) and absolute log/pid paths kept in the prefix."""
    conf = re.sub(
        r"^(\s*server\s+)(?!\d+\.\d+\.\d+\.\d+|\[)([A-Za-z0-9.-]+)(:\d+)",
        r"\g<1>127.0.0.1\g<3>",
        conf,
        flags=re.MULTILINE,
    )
    conf = re.sub(r"(?<=\s)/var/log/nginx/", "logs/", conf)
    conf = re.sub(r"(?<=pid )/run/nginx\.pid", "nginx.pid", conf)
    if "client_body_temp_path" not in conf:
        temp = "".join(
            f"    {kind}_temp_path tmp/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        conf = re.sub(r"^http \{\n", "http {\n" + temp, conf, count=1, flags=re.MULTILINE)
    return conf


def _nginx(conf: Path, environ: Mapping[str, str]) -> CheckResult:
    nginx = find("nginx", environ)
    with tempfile.TemporaryDirectory(prefix="scalectl-nginx-") as tmp:
        prefix = Path(tmp)
        for sub in ("logs", "tmp", "conf"):
            (prefix / sub).mkdir()
        copy = prefix / "conf" / "nginx.conf"
        copy.write_text(nginx_check_copy(conf.read_text()))
        code, text = _run([nginx, "-t", "-q", "-p", f"{prefix}/", "-c", str(copy)])
    return _result("nginx -t", conf, code, text)


def _gixy(conf: Path, environ: Mapping[str, str]) -> CheckResult:
    gixy = find("gixy", environ)
    code, text = _run([gixy, str(conf)])
    detail = text if code else ""
    return _result("gixy", conf, code, detail)


def _result(tool: str, target: Path, code: int, text: str) -> CheckResult:
    if code == 0:
        return CheckResult(tool, str(target), "ok")
    return CheckResult(tool, str(target), "failed", _summary(text) or f"exit {code}")


def checks_for(
    root: Path, k8s_version: str, environ: Mapping[str, str]
) -> list[tuple[str, Path, Callable[[], CheckResult]]]:
    """Every check that applies to the files under `root`, as (tool, file, thunk)."""
    plan: list[tuple[str, Path, Callable[[], CheckResult]]] = []
    nginx_conf = root / "nginx" / "nginx.conf"
    if nginx_conf.is_file():
        plan.append(("nginx -t", nginx_conf, lambda: _nginx(nginx_conf, environ)))
        plan.append(("gixy", nginx_conf, lambda: _gixy(nginx_conf, environ)))
    prom = root / "prometheus"
    for rules in sorted(prom.glob("*.rules.yml")):
        label = "promtool check rules"
        plan.append((label, rules, _cmd(label, "promtool", ["check", "rules"], rules, environ)))
    test = prom / "rules.test.yml"
    if test.is_file():
        label = "promtool test rules"
        plan.append(
            (label, test, _cmd(label, "promtool", ["test", "rules"], test, environ, cwd=prom))
        )
    config = prom / "prometheus.yml"
    if config.is_file():
        label = "promtool check config"
        plan.append((label, config, _cmd(label, "promtool", ["check", "config"], config, environ)))
    am = root / "alertmanager" / "alertmanager.yml"
    if am.is_file():
        label = "amtool check-config"
        plan.append((label, am, _cmd(label, "amtool", ["check-config"], am, environ)))
    for manifest in sorted((root / "kubernetes").glob("*.yaml")):
        plan.append(
            (
                "kubernetes-validate",
                manifest,
                _module(
                    "kubernetes-validate",
                    "kubernetes_validate",
                    ["-k", k8s_version, "--strict", "--quiet"],
                    manifest,
                ),
            )
        )
    compose = root / "compose" / "docker-compose.yaml"
    if compose.is_file():
        plan.append(
            (
                "compose-spec schema",
                compose,
                _module(
                    "compose-spec schema",
                    "check_jsonschema",
                    ["--builtin-schema", "vendor.compose-spec"],
                    compose,
                ),
            )
        )
    return plan


def _cmd(
    label: str,
    tool: str,
    args: list[str],
    target: Path,
    environ: Mapping[str, str],
    cwd: Path | None = None,
) -> Callable[[], CheckResult]:
    def thunk() -> CheckResult:
        exe = find(tool, environ)
        # promtool test resolves rule_files relative to its working directory.
        arg = target.name if cwd else str(target)
        code, text = _run([exe, *args, arg], cwd=cwd)
        return _result(label, target, code, text)

    return thunk


def _module(label: str, module: str, args: list[str], target: Path) -> Callable[[], CheckResult]:
    def thunk() -> CheckResult:
        code, text = _run([*_python_tool(module), *args, str(target)])
        return _result(label, target, code, text)

    return thunk


def run_checks(
    root: Path,
    k8s_version: str,
    environ: Mapping[str, str] | None = None,
    select: Callable[[str, Path], bool] | None = None,
) -> list[CheckResult]:
    """Every check that applies under `root` (or those `select(tool, file)` keeps)."""
    env = os.environ if environ is None else environ
    strict = env.get("CI", "").lower() == "true"

    def guarded(item: tuple[str, Path, Callable[[], CheckResult]]) -> CheckResult:
        tool, target, thunk = item
        try:
            return thunk()
        except _Missing as missing:
            if strict:
                return CheckResult(
                    tool, str(target), "failed", f"{missing} not installed (CI=true)"
                )
            return CheckResult(tool, str(target), "skipped", f"{missing} not installed")

    items = [
        item
        for item in checks_for(root, k8s_version, env)
        if select is None or select(item[0], item[1])
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(guarded, items))
