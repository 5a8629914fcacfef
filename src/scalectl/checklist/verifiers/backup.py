"""`backup-restore`: a backup is only tested once it has been restored. pg_dump the stack's
database, pg_restore it into a scratch database, and compare row counts table by table.

The source counts are taken inside the snapshot pg_dump dumps (`pg_export_snapshot()` and
`pg_dump --snapshot`), so traffic on the live database cannot make them differ. As root the
client tools run as the unprivileged account PostgreSQL itself runs as (docs/stack.md)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import Field

from scalectl.checklist.model import Duration, VerifierOutcome, failed, passed
from scalectl.checklist.verifiers.base import Context, Params, Verifier
from scalectl.errors import CheckFailed
from scalectl.stack.credentials import with_password
from scalectl.stack.process import RunAs, member_process

if TYPE_CHECKING:
    import psycopg

_TABLES = """
SELECT quote_ident(schemaname) || '.' || quote_ident(tablename)
FROM pg_tables
WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1
"""


class BackupParams(Params):
    """Parameters of the `backup-restore` verifier: the database, the fewest tables, and the time
    limit of pg_dump and pg_restore."""

    database: str | None = None  # default: the stack's application database
    min_tables: int = Field(1, ge=0)  # a dump of an empty schema proves little
    timeout: Duration = Field(300.0, gt=0, le=3600)  # seconds, for pg_dump and for pg_restore


def _run(
    argv: list[str], run_as: RunAs | None, timeout: float, cwd: Path, password: str = ""
) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGCONNECT_TIMEOUT": "5", "LC_ALL": "C"}
    if password:
        # The environment, not argv: /proc/PID/environ is readable by its own user only.
        env["PGPASSWORD"] = password
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=cwd,
            env=env,
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
        )
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{Path(argv[0]).name} timed out after {timeout:g}s") from None
    if proc.returncode != 0:
        detail = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()][:6]
        raise CheckFailed(f"{Path(argv[0]).name} exited {proc.returncode}", lines=detail)
    return proc.stdout


def _counts(conn: psycopg.Connection[Any], tables: list[str]) -> dict[str, int]:
    out = {}
    for table in tables:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # quote_ident'ed
        out[table] = int(row[0]) if row else 0
    return out


@dataclass(frozen=True)
class _Target:
    url: str  # the database to back up
    admin_url: str  # the same server's `postgres` database, to create and drop the scratch one
    dbname: str
    connection: list[str]  # -h -p -U for the client tools
    tools: Path
    account: RunAs | None
    timeout: float
    password: str


def check_backup(params: BackupParams, ctx: Context) -> VerifierOutcome:
    """The `backup-restore` item: pg_dump the stack's database, pg_restore it into a scratch
    database and compare row counts table by table; the scratch database is dropped. Raises
    CheckFailed (or another ScalectlError), which fails the item, when no stack runs or a tool
    is missing."""
    import psycopg

    from scalectl.stack.binaries import find_postgres_clients
    from scalectl.stack.credentials import password
    from scalectl.stack.servers import unprivileged_account

    state = ctx.stack()
    server = next((m for m in state.members if m.kind == "postgres"), None)
    if server is None or member_process(server) is None:
        return failed(f"the stack in {state.state_dir} has no running PostgreSQL")
    secret = password(Path(state.state_dir), "postgres")
    url = with_password(state.urls["database"], secret)
    if params.database:
        url = url.rsplit("/", 1)[0] + f"/{params.database}"
    parts = urlsplit(url)
    connection = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    connection += ["-U", parts.username or "postgres"]
    tools = find_postgres_clients(server.pid)
    target = _Target(
        url,
        url.rsplit("/", 1)[0] + "/postgres",
        parts.path.lstrip("/"),
        connection,
        tools.path,
        unprivileged_account(),
        params.timeout,
        secret,
    )
    work = Path(tempfile.mkdtemp(prefix="scalectl-backup-"))
    lines: list[str] = []
    try:
        if target.account is not None:
            os.chown(work, target.account.uid, target.account.gid)
        version = _run([str(tools.path / "pg_dump"), "--version"], target.account, 30, work)
        lines.append(f"{version.strip()} from {tools.path} ({tools.source})")
        return _dump_and_restore(target, work, params.min_tables, lines)
    except CheckFailed as exc:  # a tool failed: keep what was done before it as evidence
        return failed(*lines, exc.message, *exc.lines)
    except psycopg.Error as exc:
        detail = " ".join(str(exc).split())
        return failed(*lines, f"PostgreSQL: {detail}")
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)


def _dump_and_restore(
    target: _Target, work: Path, min_tables: int, lines: list[str]
) -> VerifierOutcome:
    import psycopg

    dump = work / f"{target.dbname}.dump"
    try:
        source = psycopg.connect(target.url, connect_timeout=5)
    except psycopg.Error as exc:
        return failed(*lines, f"cannot connect to {target.dbname}: {' '.join(str(exc).split())}")
    with source:
        # Count rows inside the snapshot pg_dump dumps: live traffic cannot skew the check.
        source.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        row = source.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        tables = [str(r[0]) for r in source.execute(_TABLES).fetchall()]
        before = _counts(source, tables)
        started = time.monotonic()
        argv = [str(target.tools / "pg_dump"), *target.connection, "--format=custom"]
        argv += [f"--snapshot={row[0]}", f"--file={dump}", target.dbname]
        _run(argv, target.account, target.timeout, work, target.password)
        dumped = time.monotonic() - started
    lines.append(
        f"pg_dump {target.dbname}: {len(tables)} tables, {sum(before.values())} rows, "
        f"{dump.stat().st_size / 1024:.0f} KiB in {dumped:.1f}s"
    )
    scratch = f"scalectl_restore_{secrets.token_hex(4)}"
    with psycopg.connect(target.admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{scratch}"')  # our own name, not user input
    try:
        started = time.monotonic()
        argv = [str(target.tools / "pg_restore"), *target.connection, "--no-owner"]
        argv += ["--no-privileges", "--exit-on-error", f"--dbname={scratch}", str(dump)]
        _run(argv, target.account, target.timeout, work, target.password)
        restored = time.monotonic() - started
        # Counted by psql, a separate client, as the account the tools run as.
        query = " UNION ALL ".join(
            "SELECT '{}', count(*) FROM {}".format(t.replace("'", "''"), t) for t in tables
        )
        psql = [str(target.tools / "psql"), "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"]
        psql += [*target.connection, "-d", scratch, "-c", query]
        out = _run(psql, target.account, target.timeout, work, target.password) if tables else ""
    finally:
        with psycopg.connect(target.admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    after = {}
    for line in out.splitlines():
        table, _, count = line.rpartition("\t")
        if table and count.strip().isdigit():
            after[table] = int(count)
    lines.append(
        f"pg_restore into scratch database {scratch} in {restored:.1f}s (dropped afterwards)"
    )
    problems = [
        f"{t}: {before[t]} rows dumped, {after.get(t, 'no table')} restored"
        for t in tables
        if after.get(t) != before[t]
    ]
    if not problems:
        shown = ", ".join(f"{t} {n}" for t, n in list(before.items())[:8])
        lines.append(f"row counts match in all {len(tables)} tables: {shown}")
    if len(tables) < min_tables:
        problems.append(f"{len(tables)} tables dumped, at least {min_tables} expected")
    return passed(*lines) if not problems else failed(*lines, *problems)


BACKUP_RESTORE = Verifier(
    "backup-restore",
    BackupParams,
    check_backup,
    "pg_dump of the stack's database, pg_restore into a scratch database, row counts "
    "compared table by table (then the scratch database is dropped)",
    live=True,
)
