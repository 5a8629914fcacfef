"""A tampered `.scalectl/stack` (issue 11, finding 5): a state directory or state.json that
is not ours alone is refused; a forged pid is never signalled, even with its real start
time; a log outside the state directory is never printed."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from scalectl.errors import ExitCode
from scalectl.stack.state import load
from tests.conftest import Result
from tests.helpers.stack import running_stack

Cli = Callable[..., Result]


def forge(state_dir: Path, members: list[dict[str, Any]]) -> Path:
    """A state.json only we can write, naming `members`."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state = {
        "plan": "",
        "profile": "local",
        "state_dir": str(state_dir),
        "started_at": 0.0,
        "members": members,
        "urls": {},
    }
    path = state_dir / "state.json"
    path.write_text(json.dumps(state))
    path.chmod(0o600)
    return path


def member(proc: psutil.Process, state_dir: Path, **fields: Any) -> dict[str, Any]:
    return {
        "name": "api-1",
        "kind": "app",
        "pid": proc.pid,
        "create_time": proc.create_time(),  # anyone can read it from /proc
        "log": str(state_dir / "logs" / "api-1.log"),
        **fields,
    }


@pytest.fixture
def sleeper() -> Iterator[psutil.Process]:
    """An unrelated process in a group of its own, as every member of the stack is."""
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield psutil.Process(proc.pid)
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def stack() -> Iterator[Path]:
    with running_stack("hostile-state") as (_, state_dir):
        yield state_dir


@pytest.mark.stack
def test_a_forged_pid_with_its_start_time_is_not_signalled(
    cli: Cli, stack: Path, sleeper: psutil.Process, tmp_path: Path
) -> None:
    real = load(stack)
    assert real is not None
    # The stack's own members are recognised: what `down` needs to stop them.
    assert cli("stack", "status", "--state-dir", stack).code == ExitCode.OK
    # nginx's recorded executable and command line, with the pid and start time of `sleep`.
    nginx = json.loads((stack / "state.json").read_text())["members"]
    [entry] = [m for m in nginx if m["name"] == "nginx"]
    fake = tmp_path / "fake"
    forge(fake, [{**entry, **member(sleeper, fake, name="nginx", kind="nginx")}])

    status = cli("stack", "status", "--state-dir", fake, "--json")
    assert status.code == ExitCode.CHECK_FAILED
    assert json.loads(status.stdout)["members"][0]["detail"] == "process is gone"
    down = cli("stack", "down", "--state-dir", fake)
    assert down.code == ExitCode.OK, down.stderr
    assert sleeper.is_running() and sleeper.status() != psutil.STATUS_ZOMBIE
    assert cli("stack", "status", "--state-dir", stack).code == ExitCode.OK  # untouched


@pytest.mark.stack
def test_stack_up_keeps_its_state_directory_private(stack: Path) -> None:
    # As root PostgreSQL's account and nginx's workers must pass through it: 0711.
    mode = stat.S_IMODE(stack.stat().st_mode)
    assert mode == (0o711 if os.geteuid() == 0 else 0o700)
    assert stat.S_IMODE((stack / "state.json").stat().st_mode) & 0o022 == 0


def test_state_without_exe_and_cmdline_is_never_signalled(
    cli: Cli, sleeper: psutil.Process, tmp_path: Path
) -> None:
    forge(tmp_path / "s", [member(sleeper, tmp_path / "s")])
    down = cli("stack", "down", "--state-dir", tmp_path / "s")
    assert down.code == ExitCode.OK
    assert down.stdout == (
        "not stopping api-1: the state does not record what was started (written by an "
        f"older scalectl), so pid {sleeper.pid} is not signalled; stop it yourself if it is "
        "the stack's\n"
        "stopped 0 processes; not verified as the stack's, left alone: api-1\n"
        f"state kept in {tmp_path / 's'}: remove it once those processes are stopped\n"
    )
    assert sleeper.is_running() and sleeper.status() != psutil.STATUS_ZOMBIE


def test_a_matching_exe_with_another_command_line_is_not_ours(
    cli: Cli, sleeper: psutil.Process, tmp_path: Path
) -> None:
    forge(
        tmp_path / "s",
        [member(sleeper, tmp_path / "s", exe=sleeper.exe(), cmdline=["sleep", "301"])],
    )
    assert cli("stack", "down", "--state-dir", tmp_path / "s").code == ExitCode.OK
    assert sleeper.is_running() and sleeper.status() != psutil.STATUS_ZOMBIE


def test_the_group_of_a_dead_leader_is_left_alone(cli: Cli, tmp_path: Path) -> None:
    """A member whose leader is gone has its group's leftovers stopped, but only those
    running the member's executable: here the leader was a shell and its child is `sleep`
    (before the fix, `down` killed it)."""
    leader = subprocess.Popen(["sh", "-c", "sleep 300 & exit 0"], start_new_session=True)
    try:
        started = psutil.Process(leader.pid).create_time()
        child = _group_child(leader.pid)
        shell = os.path.realpath(shutil.which("sh") or "/bin/sh")
        state = tmp_path / "s"
        fields = {"create_time": started, "exe": shell, "cmdline": ["sh", "-c", "x"]}
        forge(state, [{**member(child, state), "pid": leader.pid, **fields}])
        assert cli("stack", "down", "--state-dir", state).code == ExitCode.OK
        assert child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    finally:
        for proc in _group_members(leader.pid):
            proc.kill()
        leader.wait()


def _group_members(pgid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != pgid and os.getpgid(proc.pid) == pgid:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def _group_child(pgid: int) -> psutil.Process:
    """The shell's `sleep`, once the shell has exited (a zombie: we do not reap it)."""
    for _ in range(200):
        found = _group_members(pgid)
        if found and psutil.Process(pgid).status() == psutil.STATUS_ZOMBIE:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("the shell did not leave its child behind")


def test_a_log_outside_the_state_directory_is_refused(
    cli: Cli, sleeper: psutil.Process, tmp_path: Path
) -> None:
    forge(tmp_path / "s", [member(sleeper, tmp_path / "s", log="/etc/passwd")])
    result = cli("stack", "logs", "api-1", "--state-dir", tmp_path / "s")
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == (
        f"error: {tmp_path / 's' / 'state.json'}: refusing a stack state whose logs lie "
        "outside its directory; remove the directory if you did not write it\n"
        f"api-1.log /etc/passwd: not inside {tmp_path / 's'}\n"
    )
    assert result.stdout == ""
    # `..` does not lead out either.
    forge(tmp_path / "s", [member(sleeper, tmp_path / "s", log=f"{tmp_path}/s/../../x")])
    assert cli("stack", "logs", "api-1", "--state-dir", tmp_path / "s").code == 2


def test_a_log_that_is_a_symlink_is_refused(
    cli: Cli, sleeper: psutil.Process, tmp_path: Path
) -> None:
    state = tmp_path / "s"
    forge(state, [member(sleeper, state)])
    (state / "logs").mkdir()
    (state / "logs" / "api-1.log").symlink_to("/etc/passwd")
    result = cli("stack", "logs", "api-1", "--state-dir", state)
    assert result.code == ExitCode.BAD_INPUT
    assert "root:" not in result.stdout + result.stderr
    # A linked directory on the way is refused as well.
    (state / "logs" / "api-1.log").unlink()
    (state / "logs").rmdir()
    (state / "logs").symlink_to("/etc")
    forge(state, [member(sleeper, state, log=str(state / "logs" / "passwd"))])
    result = cli("stack", "logs", "api-1", "--state-dir", state)
    assert result.code == ExitCode.BAD_INPUT
    assert "root:" not in result.stdout + result.stderr


def test_a_group_writable_state_directory_is_refused(
    cli: Cli, sleeper: psutil.Process, tmp_path: Path
) -> None:
    state = tmp_path / "s"
    forge(state, [member(sleeper, state)])
    state.chmod(0o770)
    for command in ("down", "status"):
        result = cli("stack", command, "--state-dir", state)
        assert result.code == ExitCode.BAD_INPUT
        assert result.stderr == (
            f"error: {state}: refusing a stack state directory that is writable by group or "
            "others (mode 0770); use a directory only you can write\n"
        )
    up = cli("stack", "up", "--state-dir", state)
    assert up.code == ExitCode.BAD_INPUT and "refusing a stack state directory" in up.stderr
    assert sleeper.is_running()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory away")
def test_a_state_directory_owned_by_someone_else_is_refused(cli: Cli, tmp_path: Path) -> None:
    state = tmp_path / "s"
    forge(state, [])
    os.chown(state, 65534, 65534)
    result = cli("stack", "down", "--state-dir", state)
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == (
        f"error: {state}: refusing a stack state directory that is owned by uid 65534, not "
        f"by you (uid {os.geteuid()}); use a directory only you can write\n"
    )


def test_a_symlinked_state_directory_is_refused(cli: Cli, tmp_path: Path) -> None:
    forge(tmp_path / "real", [])
    (tmp_path / "s").symlink_to(tmp_path / "real")
    result = cli("stack", "down", "--state-dir", tmp_path / "s")
    assert result.code == ExitCode.BAD_INPUT
    assert "refusing a stack state directory that is a symbolic link" in result.stderr


def test_a_state_json_symlink_is_refused(cli: Cli, sleeper: psutil.Process, tmp_path: Path) -> None:
    elsewhere = forge(tmp_path / "elsewhere", [member(sleeper, tmp_path / "s")])
    state = tmp_path / "s"
    state.mkdir(mode=0o700)
    (state / "state.json").symlink_to(elsewhere)
    result = cli("stack", "down", "--state-dir", state)
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == (
        f"error: {state / 'state.json'}: refusing a stack state file that is a symbolic "
        "link; remove the directory if you did not write it\n"
    )
    assert sleeper.is_running()


def test_a_state_json_writable_by_others_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = forge(tmp_path / "s", [])
    path.chmod(0o620)
    result = cli("stack", "status", "--state-dir", tmp_path / "s")
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == (
        f"error: {path}: refusing a stack state file that is writable by group or others "
        "(mode 0620); remove the directory if you did not write it\n"
    )


def test_a_fifo_as_state_json_is_refused_without_hanging(tmp_path: Path) -> None:
    path = forge(tmp_path / "s", [])
    path.unlink()
    os.mkfifo(path, 0o600)
    # A subprocess with a timeout: opening a FIFO for reading blocks until a writer comes.
    result = subprocess.run(
        [sys.executable, "-m", "scalectl", "stack", "status", "--state-dir", str(path.parent)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    assert result.returncode == ExitCode.BAD_INPUT
    assert result.stderr == (
        f"error: {path}: refusing a stack state file that is not a regular file; remove the "
        "directory if you did not write it\n"
    )


@pytest.mark.parametrize(
    ("members", "line"),
    [
        ([{"name": "x"}], "members[0].create_time: missing"),  # not a TypeError
        ([{**dict.fromkeys(("name", "kind", "log"), "x"), "pid": -1, "create_time": 0}], "pid"),
        ([{**dict.fromkeys(("name", "kind", "log"), "x"), "pid": "1", "create_time": 0}], "pid"),
        ([{"name": "x", "extra": 1}], "members[0].extra: unknown field"),
    ],
)
def test_malformed_members_are_bad_input(
    cli: Cli, tmp_path: Path, members: list[dict[str, Any]], line: str
) -> None:
    forge(tmp_path / "s", members)
    result = cli("stack", "down", "--state-dir", tmp_path / "s")
    assert result.code == ExitCode.BAD_INPUT
    assert "unreadable stack state" in result.stderr and line in result.stderr
    assert "Traceback" not in result.stderr
