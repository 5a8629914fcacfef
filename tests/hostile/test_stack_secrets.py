"""The local stack keeps its secrets (issue 11, finding 8): PostgreSQL and both Redis
servers require passwords that live in 0600 files only, never in argv, state.json or logs;
children do not inherit the caller's environment; scalectl changes no directory mode
outside its state dir; crash logs are private and carry no secrets."""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from scalectl import crashlog
from scalectl.stack import apikeys, credentials
from scalectl.stack.state import StackState, load
from tests.conftest import Result
from tests.helpers.stack import local_plan, running_stack

pytestmark = pytest.mark.stack

CALLER_SECRET = "SCALECTL_TEST_SECRET"
CALLER_VALUE = "ci-token-must-not-reach-the-app-0f3c9"


def _modes(path: Path) -> dict[Path, int]:
    return {p: p.stat().st_mode for p in [path, *path.parents]}


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[StackState, dict[Path, int]]]:
    """One stack, started with a secret in the caller's environment; with the modes of
    the directories above its state dir from before `up`."""
    before = _modes(Path(tempfile.gettempdir()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CALLER_SECRET, CALLER_VALUE)
        patch.setenv("LOG_LEVEL", "info")  # an app setting: passes, as drills rely on
        with running_stack("secrets") as (_, state_dir):
            patch.undo()
            # running_stack made its root 0711 before `up`: up left it so.
            before[state_dir.parent] = stat.S_IFDIR | 0o711
            state = load(state_dir)
            assert state is not None
            yield state, before


def _processes(state: StackState) -> list[psutil.Process]:
    procs = []
    for member in state.members:
        proc = psutil.Process(member.pid)
        procs += [proc, *proc.children(recursive=True)]
    return procs


def _passwords(state: StackState) -> list[str]:
    return [credentials.password(Path(state.state_dir), n) for n in credentials.NAMES]


def test_postgres_refuses_a_login_without_the_password(
    stack: tuple[StackState, dict[Path, int]],
) -> None:
    state, _ = stack
    root = Path(state.state_dir)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(state.urls["database"], connect_timeout=5).close()
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(
            credentials.with_password(state.urls["database"], "wrong"), connect_timeout=5
        ).close()
    # The local socket asks for it too (as root we can reach the 0700 socket directory).
    member = state.member("postgres")
    assert member is not None and member.port is not None
    socket_dir = root / "postgres" / "data"
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(
            host=str(socket_dir), port=member.port, user="postgres", dbname="refapp"
        ).close()
    url = credentials.authenticated_url(root, state.urls, "database")
    with psycopg.connect(url, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)


def _redis_reply(url: str, command: bytes) -> bytes:
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(command)
        return sock.recv(256)


@pytest.mark.parametrize("key", ["redis", "broker"])
def test_redis_answers_noauth_without_the_password(
    stack: tuple[StackState, dict[Path, int]], key: str
) -> None:
    state, _ = stack
    assert _redis_reply(state.urls[key], b"PING\r\n").startswith(b"-NOAUTH")
    assert _redis_reply(state.urls[key], b"AUTH wrong\r\n").startswith(b"-WRONGPASS")
    secret = credentials.password(Path(state.state_dir), key)
    reply = _redis_reply(state.urls[key], f"AUTH {secret}\r\nPING\r\n".encode())
    assert reply == b"+OK\r\n+PONG\r\n"


def test_passwords_are_in_no_argv_state_or_log(
    stack: tuple[StackState, dict[Path, int]],
) -> None:
    state, _ = stack
    root = Path(state.state_dir)
    passwords = _passwords(state)
    assert len(set(passwords)) == 3 and all(len(p) >= 24 for p in passwords)
    procs = _processes(state)
    assert len(procs) > len(state.members)
    for proc in procs:
        try:
            cmdline = " ".join(proc.cmdline())
        except psutil.NoSuchProcess:  # a PostgreSQL backend that ended meanwhile
            continue
        assert not [p for p in passwords if p in cmdline], cmdline
    state_text = (root / "state.json").read_text()
    assert "127.0.0.1" in state_text
    assert not [p for p in passwords if p in state_text]
    logs = [p for p in root.rglob("*.log") if p.is_file()]
    logs += [p for p in (root / "logs").iterdir() if p.is_file()]
    assert len(logs) >= len(state.members)
    for log in logs:
        text = log.read_text(errors="replace")
        assert not [p for p in passwords if p in text], log


def test_secret_files_are_private(stack: tuple[StackState, dict[Path, int]]) -> None:
    state, _ = stack
    directory = credentials.secrets_dir(Path(state.state_dir))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    keys = apikeys.keys_file(Path(state.state_dir))
    assert keys.parent == directory  # the app's API key pool lives beside the passwords
    assert sorted(p.name for p in directory.iterdir()) == sorted([*credentials.NAMES, keys.name])
    for path in directory.iterdir():
        info = path.lstat()
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600, path
    # No copy of a Redis password is left in a config file.
    assert not list(Path(state.state_dir).rglob(".auth-*.conf"))


def test_logs_are_private(stack: tuple[StackState, dict[Path, int]]) -> None:
    # The state dir is traversable (0711) for the servers' own accounts: its logs are not.
    state, _ = stack
    root = Path(state.state_dir)
    for directory in (root / "logs", root / "nginx" / "logs"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for member in state.members:
        assert stat.S_IMODE(Path(member.log).stat().st_mode) == 0o600, member.log


def test_members_do_not_inherit_the_callers_environment(
    stack: tuple[StackState, dict[Path, int]],
) -> None:
    state, _ = stack
    readable = 0
    for proc in _processes(state):
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
        assert CALLER_SECRET.encode() not in environ, proc.cmdline()
        assert CALLER_VALUE.encode() not in environ
        # PostgreSQL overwrites its environment block with its process title.
        readable += b"PATH=" in environ
    assert readable >= len(state.members) - 1
    apps = [m for m in state.members if m.kind in ("app", "worker")]
    for member in apps:
        environ = Path(f"/proc/{member.pid}/environ").read_bytes().split(b"\0")
        assert b"LOG_LEVEL=info" in environ, member.name


def test_no_directory_above_the_state_dir_changed_mode(
    stack: tuple[StackState, dict[Path, int]],
) -> None:
    _, before = stack
    assert len(before) >= 3
    assert {p: p.stat().st_mode for p in before} == before


def test_the_state_dir_is_not_writable_by_others(
    stack: tuple[StackState, dict[Path, int]],
) -> None:
    state, _ = stack
    assert not Path(state.state_dir).stat().st_mode & 0o022


@pytest.mark.skipif(os.geteuid() != 0, reason="other accounts need access only as root")
def test_an_untraversable_parent_is_named_and_left_alone(cli: Callable[..., Result]) -> None:
    root = Path(tempfile.mkdtemp(prefix="scalectl-closed-"))  # 0700
    try:
        plan = local_plan(root)
        result = cli("stack", "up", "--plan", plan, "--state-dir", root / "s")
        assert result.code == 2, result.stdout + result.stderr
        assert result.stderr.splitlines()[0] == (
            f"error: {root}: not traversable by other users (mode 0700), so PostgreSQL's and "
            f"nginx's unprivileged accounts cannot reach {root / 's'}"
        )
        assert "--state-dir" in result.stderr
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        assert not (root / "s" / "postgres").exists()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- crash logs ---------------------------------------------------------------------------


def test_crash_log_is_private_and_redacted(tmp_path: Path) -> None:
    argv = [
        "scalectl",
        "health",
        "http://127.0.0.1:8080/",
        "-H",
        "Authorization: Bearer s3cr3t-one",
        "--header=X-Api-Key: s3cr3t-two",
        "--token-env",
        "MY_TOKEN",
        "-HX-Other: s3cr3t-three",
        "postgresql://postgres:s3cr3t-four@127.0.0.1:5432/refapp",
    ]
    path = crashlog.write({"XDG_STATE_HOME": str(tmp_path)}, argv, "0", "Traceback ...\n")
    assert path.parent == tmp_path / "scalectl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert "s3cr3t" not in text
    assert "'-H', '<redacted>'" in text
    assert "'--header=<redacted>'" in text
    assert "'http://127.0.0.1:8080/'" in text
    assert "postgresql://<redacted>@127.0.0.1:5432/refapp" in text


def test_crash_log_refuses_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("untouched")
    directory = tmp_path / "state" / "scalectl"
    directory.mkdir(parents=True, mode=0o700)
    now = datetime.datetime.now(datetime.UTC)
    for seconds in range(3):  # every name the write below can pick
        stamp = (now + datetime.timedelta(seconds=seconds)).strftime("%Y%m%dT%H%M%SZ")
        (directory / f"scalectl-crash-{stamp}-{os.getpid()}.log").symlink_to(target)
    path = crashlog.write({"XDG_STATE_HOME": str(tmp_path / "state")}, ["scalectl"], "0", "x")
    assert target.read_text() == "untouched"
    assert path.parent != directory and not path.is_symlink()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700  # a fresh private directory
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.unlink()
    path.parent.rmdir()


def test_crash_log_skips_a_state_dir_others_can_write(tmp_path: Path) -> None:
    directory = tmp_path / "scalectl"
    directory.mkdir()
    directory.chmod(0o777)
    path = crashlog.write({"XDG_STATE_HOME": str(tmp_path)}, ["scalectl"], "0", "x")
    assert path.parent != directory
    assert not str(path.parent).startswith(str(tmp_path))
    assert list(directory.iterdir()) == []
    path.unlink()
    path.parent.rmdir()
