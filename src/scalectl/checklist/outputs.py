"""Where a checklist run writes (the progress directory, the Markdown export), checked
before any item runs: a run that verifies everything and then cannot save its result
would waste minutes of drills and backups."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _probe(directory: Path) -> str | None:
    """Why no file can be created in `directory`, or None when one can. Tried for real
    with a temporary file: permission bits say nothing for root or for /proc and /sys."""
    try:
        with tempfile.NamedTemporaryFile(prefix=".scalectl-probe-", dir=directory):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def directory_problem(flag: str, path: Path) -> str | None:
    """Why files cannot be saved in `path` (created later if missing), as one line naming
    the flag. Nothing is created: the nearest existing ancestor is probed instead."""
    if path.exists() and not path.is_dir():
        return f"{flag} {path}: not a directory"
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{flag} {path}: {existing} is not a directory"
    why = _probe(existing)
    if why:
        where = "there" if existing == path.absolute() else f"in {existing}"
        return f"{flag} {path}: cannot write {where} ({why})"
    return None


def file_problem(flag: str, path: Path) -> str | None:
    """Why `path` cannot be written (its directory must exist), as one line naming the flag."""
    if path.is_dir():
        return f"{flag} {path}: is a directory, expected a file path"
    parent = path.absolute().parent
    if not parent.is_dir():
        return f"{flag} {path}: no such directory {parent}"
    if path.exists() and not os.access(path, os.W_OK):
        return f"{flag} {path}: not writable"
    why = _probe(parent)
    return f"{flag} {path}: cannot write in {parent} ({why})" if why else None
