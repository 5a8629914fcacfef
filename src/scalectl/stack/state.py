"""The stack's state directory: what runs, where, since when. Written atomically after
every change so a killed `scalectl` leaves enough behind to clean up.

The state is trusted only as far as it can be (issue 11, finding 5): the directory and
`state.json` must be ours and writable by no one else, logs must lie inside the directory,
URLs must be loopback, and a pid counts as the stack's only while its start time,
executable and command line match (stack/process.py, `member_process`)."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scalectl.errors import InputError

STATE_FILE = "state.json"
MAX_STATE_BYTES = 1024 * 1024
MAX_LOG_BYTES = 1024 * 1024  # `stack logs` reads at most this much from a log's end


@dataclass
class Member:
    """One process of the stack."""

    name: str  # postgres, redis, broker, api-1, worker-jobs-1, nginx, prometheus
    kind: str  # postgres | redis | app | worker | nginx | prometheus
    pid: int
    create_time: float
    log: str
    port: int | None = None
    health_url: str | None = None
    url: str | None = None  # how clients reach it (postgresql://, redis://, http://)
    # How long it may take to finish work in flight when asked to stop (the plan's
    # graceful_shutdown_seconds); None for members that hold no work of their own.
    drain_seconds: float | None = None
    # What was started, as psutil saw it right after the start; None in state written
    # before they were recorded, whose pids are then never signalled.
    exe: str | None = None
    cmdline: list[str] | None = None


@dataclass
class StackState:
    """What runs in one state directory: its members, the URLs clients use, notes for the
    user, and the plan and profile it was started from (state.json)."""

    plan: str
    profile: str
    state_dir: str
    started_at: float
    members: list[Member] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def member(self, name: str) -> Member | None:
        """The member called `name`, or None."""
        return next((m for m in self.members if m.name == name), None)

    def save(self) -> None:
        """Write state.json atomically. InputError when the state directory cannot be
        created or is not ours alone (ensure_dir)."""
        # Imported here: scalectl.plan is slow to import, and `stack down` never saves.
        from scalectl.files import write_file

        directory = Path(self.state_dir)
        ensure_dir(directory)
        write_file(directory / STATE_FILE, json.dumps(asdict(self), indent=2).encode())


def dir_mode() -> int:
    """The state directory's mode: private, but as root traversable (not listable) by the
    unprivileged accounts PostgreSQL and nginx's workers run as, which reach their own
    directories below it."""
    return 0o711 if os.geteuid() == 0 else 0o700


def ensure_dir(state_dir: Path) -> None:
    """Create the state directory (private, see `dir_mode`) or check an existing one.
    InputError when it cannot be created or is not ours alone."""
    try:
        state_dir.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(state_dir, dir_mode())
        os.chmod(state_dir, dir_mode())  # mkdir's mode is masked by the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise InputError(f"{state_dir}: cannot create the state directory ({exc})") from None
    _check_dir(state_dir)


def _untrusted(st: os.stat_result, kind: str) -> str | None:
    """Why a file or directory with this lstat is not ours alone, or None."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    wanted = stat.S_ISDIR if kind == "directory" else stat.S_ISREG
    if not wanted(st.st_mode):
        return f"is not a {kind}"
    if st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}, not by you (uid {os.geteuid()})"
    if st.st_mode & 0o022:
        return f"is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _check_dir(state_dir: Path) -> None:
    problem = _untrusted(os.lstat(state_dir), "directory")
    if problem:
        raise InputError(
            f"{state_dir}: refusing a stack state directory that {problem}; "
            "use a directory only you can write"
        )


def load(state_dir: Path) -> StackState | None:
    """The state in `state_dir`, None when there is none; InputError (exit 2) for a state
    that is not ours alone or does not describe a stack in this directory."""
    state_dir = state_dir.absolute()
    path = state_dir / STATE_FILE
    try:
        _check_dir(state_dir)
        data = _read(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable stack state ({exc}); remove the directory") from None
    state = _parse(path, data)
    # The directory it was read from is where the stack lives, whatever the file says:
    # paths below it are created, wiped and read (logs, metrics, data directories).
    state.state_dir = str(state_dir)
    _check_paths(path, state)
    _check_urls(path, state)
    return state


def _read(path: Path) -> Any:
    # O_NOFOLLOW and fstat: the file checked is the file read. O_NONBLOCK: a FIFO in its
    # place must not hang us (it is refused as not a regular file).
    _check_file(path, os.lstat(path))
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        _check_file(path, os.fstat(fd))
        data = os.read(fd, MAX_STATE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_STATE_BYTES:
        raise ValueError(f"larger than {MAX_STATE_BYTES} bytes")
    return json.loads(data)


def _check_file(path: Path, st: os.stat_result) -> None:
    problem = _untrusted(st, "regular file")
    if problem:
        raise InputError(
            f"{path}: refusing a stack state file that {problem}; remove the directory if "
            "you did not write it"
        )


_MEMBER_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "kind": (str,),
    "pid": (int,),
    "create_time": (int, float),
    "log": (str,),
    "port": (int, type(None)),
    "health_url": (str, type(None)),
    "url": (str, type(None)),
    "drain_seconds": (int, float, type(None)),
    "exe": (str, type(None)),
    "cmdline": (list, type(None)),
}
_STATE_TYPES: dict[str, tuple[type, ...]] = {
    "plan": (str,),
    "profile": (str,),
    "state_dir": (str,),
    "started_at": (int, float),
    "members": (list,),
    "urls": (dict,),
    "notes": (list,),
}


def _parse(path: Path, data: Any) -> StackState:
    """The state from its JSON, every field checked: one line per problem."""
    problems = _shape("", data, _STATE_TYPES, {"plan", "profile", "state_dir", "started_at"})
    members: list[Member] = []
    if not problems:
        for index, raw in enumerate(data.get("members", [])):
            where = f"members[{index}]"
            required = {"name", "kind", "pid", "create_time", "log"}
            found = _shape(f"{where}.", raw, _MEMBER_TYPES, required)
            cmdline = raw.get("cmdline") if isinstance(raw, dict) else None
            if cmdline is not None and not all(isinstance(a, str) for a in cmdline):
                found.append(f"{where}.cmdline: expected a list of strings")
            if not found and (isinstance(raw["pid"], bool) or raw["pid"] < 1):
                found.append(f"{where}.pid: {raw['pid']} is no pid the stack could have")
            problems += found
            if not found:
                members.append(Member(**raw))
        urls = data.get("urls", {})
        problems += [
            f"urls.{k}: expected a string" for k, v in urls.items() if not isinstance(v, str)
        ]
        if not all(isinstance(note, str) for note in data.get("notes", [])):
            problems.append("notes: expected a list of strings")
    if problems:
        raise InputError(f"{path}: unreadable stack state; remove the directory", lines=problems)
    body = {k: v for k, v in data.items() if k != "members"}
    return StackState(**body, members=members)


def _shape(
    prefix: str, raw: Any, types: dict[str, tuple[type, ...]], required: set[str]
) -> list[str]:
    if not isinstance(raw, dict):
        return [f"{prefix.rstrip('.') or 'state'}: expected an object"]
    problems = [f"{prefix}{key}: unknown field" for key in raw if key not in types]
    problems += [f"{prefix}{key}: missing" for key in sorted(required) if key not in raw]
    problems += [
        f"{prefix}{key}: expected {' or '.join(t.__name__ for t in types[key])}"
        for key, value in raw.items()
        if key in types and not isinstance(value, types[key])
    ]
    return problems


def _check_paths(path: Path, state: StackState) -> None:
    """Every log must lie inside the state directory: `stack logs` prints them, and anyone
    who could write the file could name any file on the machine."""
    problems = [
        f"{m.name}.log {m.log}: not inside {state.state_dir}"
        for m in state.members
        if inside(Path(state.state_dir), m.log) is None
    ]
    if problems:
        raise InputError(
            f"{path}: refusing a stack state whose logs lie outside its directory; remove "
            "the directory if you did not write it",
            lines=problems,
        )


def inside(state_dir: Path, name: str) -> Path | None:
    """`name` as a path inside `state_dir`, or None: absolute, no `..`, no symlink on the
    way (each component below the directory is checked as it is now)."""
    candidate = Path(name)
    if not candidate.is_absolute() or ".." in candidate.parts:
        return None
    try:
        rel = candidate.relative_to(state_dir)
    except ValueError:
        return None
    if not rel.parts:
        return None
    step = state_dir
    for part in rel.parts:
        step = step / part
        try:
            if stat.S_ISLNK(os.lstat(step).st_mode):
                return None
        except FileNotFoundError:
            break  # not written yet: nothing below it can be a link either
        except OSError:
            return None
    return candidate


def read_log(state: StackState, member: Member, lines: int) -> str:
    """The last `lines` of a member's log, read without following a symlink; InputError
    for a log outside the state directory or not a regular file."""
    path = inside(Path(state.state_dir), member.log)
    if path is None:
        raise InputError(
            f"{member.name}: refusing to read log {member.log}: not inside {state.state_dir}"
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise InputError(f"{member.name}: cannot read log {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{member.name}: refusing to read log {path}: not a regular file")
        handle.seek(max(0, st.st_size - MAX_LOG_BYTES))
        text = handle.read(MAX_LOG_BYTES).decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""


def _check_urls(path: Path, state: StackState) -> None:
    """Every URL in the state must be loopback: health, drills, checklists and load tests
    send traffic (and tokens) to them, and anyone who can write the file could point them
    elsewhere (issue 11, finding 5)."""
    from scalectl.netguard import state_url_problem

    named: list[tuple[str, str | None]] = [(f"urls.{key}", u) for key, u in state.urls.items()]
    for member in state.members:
        named += [
            (f"{member.name}.url", member.url),
            (f"{member.name}.health_url", member.health_url),
        ]
    problems = [
        f"{where} {url}: {problem}"
        for where, url in named
        if url is not None and (problem := state_url_problem(str(url)))
    ]
    if problems:
        raise InputError(
            f"{path}: refusing a stack state whose URLs leave this machine; remove the "
            "directory if you did not write it",
            lines=problems,
        )


def clear(state_dir: Path) -> None:
    """Forget the stack of `state_dir`: remove its state.json (nothing when there is none)."""
    (state_dir / STATE_FILE).unlink(missing_ok=True)
