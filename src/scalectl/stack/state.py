"""The stack's state directory: what runs, where, since when. Written atomically after
every change so a killed `scalectl` leaves enough behind to clean up."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scalectl.errors import InputError

STATE_FILE = "state.json"


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


@dataclass
class StackState:
    plan: str
    profile: str
    state_dir: str
    started_at: float
    members: list[Member] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def save(self) -> None:
        # Imported here: scalectl.plan is slow to import, and `stack down` never saves.
        from scalectl.plan.write import write_file

        directory = Path(self.state_dir)
        directory.mkdir(parents=True, exist_ok=True)
        write_file(directory / STATE_FILE, json.dumps(asdict(self), indent=2).encode())


def load(state_dir: Path) -> StackState | None:
    path = state_dir / STATE_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable stack state ({exc}); remove the directory") from None
    members = [Member(**m) for m in data.pop("members", [])]
    state = StackState(**data, members=members)
    _check_urls(path, state)
    return state


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
    (state_dir / STATE_FILE).unlink(missing_ok=True)
