"""Dropping root: the unprivileged accounts scalectl runs servers (PostgreSQL refuses root)
and validators (which read untrusted files, issue 11) as. Used by `stack` and `plan`."""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account to run a process as."""

    name: str
    uid: int
    gid: int


def unprivileged_account(
    names: Sequence[str], *, create: str | None = None, fallback: str | None = None
) -> RunAs | None:
    """None when we are not root; else the first of `names` that exists, else `create`
    made as a system account (no home, no shell), else `fallback` if it exists."""
    if os.geteuid() != 0:
        return None
    for name in names:
        with contextlib.suppress(KeyError):
            return _account(name)
    if create is not None:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", create],
            capture_output=True,
            check=False,
        )
        # Exit 9: created meanwhile by another scalectl.
        if made.returncode in (0, 9) or fallback is None:
            return _account(create)
    if fallback is not None:
        return _account(fallback)
    raise KeyError(names[0] if names else "")


def _account(name: str) -> RunAs:
    entry = pwd.getpwnam(name)
    return RunAs(name, entry.pw_uid, entry.pw_gid)
