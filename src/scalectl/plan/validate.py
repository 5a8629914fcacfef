"""Run the real validators over a rendered directory: nginx, gixy, promtool, amtool,
kubernetes-validate and the compose-spec schema. A missing tool is skipped, or failed
under CI=true (issue 2: "under CI a missing tool is a failure"). They read a private copy
of the files, unprivileged when scalectl is root (plan/sandbox.py)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from scalectl.plan.adapter import promtool_rules
from scalectl.plan.sandbox import Sandbox, sandbox, validator_path

Status = Literal["ok", "failed", "skipped"]
# Debian puts nginx in /usr/sbin, which is not on an ordinary user's PATH.
_EXTRA_PATH = os.pathsep.join(["/usr/sbin", "/usr/local/sbin", "/sbin"])


@dataclass(frozen=True)
class CheckResult:
    """One validator run on one file: the tool, the file, ok, failed or skipped, and what it
    said."""

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
    """The path of `tool` (as `which` finds it). Raises _Missing when it is not installed, which
    skips the check (fails it under CI=true)."""
    found = which(tool, environ)
    if not found:
        raise _Missing(tool)
    return found


def module_command(module: str) -> list[str] | None:
    """`python -m module` in the interpreter scalectl runs in, or None when not installed."""
    if importlib.util.find_spec(module) is None:
        return None
    return [sys.executable, "-m", module]


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


def _nginx(box: Sandbox, conf: Path, environ: Mapping[str, str]) -> CheckResult:
    nginx = find("nginx", environ)
    prefix = box.scratch("nginx-prefix")
    for sub in ("logs", "tmp", "conf"):
        (prefix / sub).mkdir()
        box.give(prefix / sub)
    copy = prefix / "conf" / "nginx.conf"
    copy.write_text(_unprivileged_ports(nginx_check_copy(conf.read_text())))
    box.give(copy)
    code, text = box.run([nginx, "-t", "-q", "-p", f"{prefix}/", "-c", str(copy)])
    return _result("nginx -t", box.original / conf.relative_to(box.files), code, text)


_LISTEN = re.compile(r"^(\s*listen\s+(?:\[[^\]]*\]:|[A-Za-z0-9.-]+:)?)(\d+)(?=[\s;])", re.M)


def _unprivileged_ports(conf: str) -> str:
    """Ports below 1024 moved to free high ones: `nginx -t` binds every listen address,
    and it runs unprivileged (as root, as the sandbox's account)."""
    ports: dict[str, str] = {}

    def move(match: re.Match[str]) -> str:
        port = match.group(2)
        if int(port) >= 1024:
            return match.group(0)
        if port not in ports:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                ports[port] = str(sock.getsockname()[1])
        return match.group(1) + ports[port]

    return _LISTEN.sub(move, conf)


def _gixy(box: Sandbox, conf: Path, environ: Mapping[str, str]) -> CheckResult:
    # Only the rendered file: an `include` could name any file (issue 11).
    args = ["--disable-includes", str(conf)]
    if importlib.util.find_spec("gixy") is not None:
        code, text = box.run_module("gixy", args)
    else:
        code, text = box.run([find("gixy", environ), *args])
    detail = text if code else ""
    return _result("gixy", box.original / conf.relative_to(box.files), code, detail)


def _result(tool: str, target: Path, code: int, text: str) -> CheckResult:
    if code == 0:
        return CheckResult(tool, str(target), "ok")
    return CheckResult(tool, str(target), "failed", _summary(text) or f"exit {code}")


def checks_for(
    box: Sandbox, k8s_version: str, environ: Mapping[str, str]
) -> list[tuple[str, Path, Callable[[], CheckResult]]]:
    """Every check that applies to the files of the sandbox's copy, as (tool, file in the
    copy, thunk)."""
    root = box.files
    plan: list[tuple[str, Path, Callable[[], CheckResult]]] = []
    nginx_conf = root / "nginx" / "nginx.conf"
    if nginx_conf.is_file():
        plan.append(("nginx -t", nginx_conf, lambda: _nginx(box, nginx_conf, environ)))
        plan.append(("gixy", nginx_conf, lambda: _gixy(box, nginx_conf, environ)))
    prom = root / "prometheus"
    for rules in sorted(prom.glob("*.rules.yml")):
        label = "promtool check rules"
        plan.append(
            (label, rules, _cmd(box, label, "promtool", ["check", "rules"], rules, environ))
        )
    test = prom / "rules.test.yml"
    if test.is_file():
        label = "promtool test rules"
        plan.append(
            (label, test, _cmd(box, label, "promtool", ["test", "rules"], test, environ, cwd=prom))
        )
    config = prom / "prometheus.yml"
    if config.is_file():
        label = "promtool check config"
        plan.append(
            (label, config, _cmd(box, label, "promtool", ["check", "config"], config, environ))
        )
    am = root / "alertmanager" / "alertmanager.yml"
    if am.is_file():
        label = "amtool check-config"
        plan.append((label, am, _cmd(box, label, "amtool", ["check-config"], am, environ)))
    adapter_config = root / "kubernetes" / "prometheus-adapter.yaml"
    if adapter_config.is_file():
        label = "promtool check rules"
        plan.append((label, adapter_config, _adapter_queries(box, adapter_config, environ)))
    for manifest in sorted((root / "kubernetes").glob("*.yaml")):
        plan.append(
            (
                "kubernetes-validate",
                manifest,
                _module(
                    box,
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
                    box,
                    "compose-spec schema",
                    "check_jsonschema",
                    ["--builtin-schema", "vendor.compose-spec"],
                    compose,
                ),
            )
        )
    return plan


def _adapter_queries(
    box: Sandbox, config: Path, environ: Mapping[str, str]
) -> Callable[[], CheckResult]:
    """promtool over prometheus-adapter's queries, as recording rules (adapter.promtool_rules)."""

    def thunk() -> CheckResult:
        exe = find("promtool", environ)
        original = box.original / config.relative_to(box.files)
        try:
            text = promtool_rules(config.read_text())
        except ValueError as exc:
            return CheckResult("promtool check rules", str(original), "failed", str(exc))
        rules = box.scratch("prometheus-adapter") / "queries.rules.yml"
        rules.write_text(text)
        box.give(rules)
        code, output = box.run([exe, "check", "rules", str(rules)])
        return _result("promtool check rules", original, code, output)

    return thunk


def _cmd(
    box: Sandbox,
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
        code, text = box.run([exe, *args, arg], cwd=cwd)
        return _result(label, box.original / target.relative_to(box.files), code, text)

    return thunk


def _module(
    box: Sandbox, label: str, module: str, args: list[str], target: Path
) -> Callable[[], CheckResult]:
    def thunk() -> CheckResult:
        if module_command(module) is None:
            raise _Missing(module.replace("_", "-"))
        code, text = box.run_module(module, [*args, str(target)])
        return _result(label, box.original / target.relative_to(box.files), code, text)

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

    with sandbox(root, validator_path(env, _EXTRA_PATH)) as box:
        items = [
            item
            for item in checks_for(box, k8s_version, env)
            if select is None or select(item[0], box.original / item[1].relative_to(box.files))
        ]
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(guarded, items))
    # A check that could not run names the file as the caller knows it.
    return [replace(r, target=r.target.replace(str(box.files), str(box.original))) for r in results]
