"""Write rendered files all-or-nothing, and diff them against what is on disk."""

from __future__ import annotations

import difflib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from scalectl.errors import InputError
from scalectl.usertext import shown
from scalectl.yamlsource import read_bounded

Files = dict[str, bytes]
Warn = Callable[[str], None]
MANIFEST = ".scalectl-manifest.json"
MAX_OLD_BYTES = 16 * 1024 * 1024  # a file already under --out larger than this is not read
MAX_JSON_BYTES = 16 * 1024 * 1024  # a report or state file larger than this is not ours


def _ignore(message: str) -> None:
    pass


def preflight(out: Path) -> None:
    """Refuse an output path we cannot use before anything is rendered or written."""
    if out.is_symlink():  # a link committed in a pull request would send the render elsewhere
        raise InputError(f"{out}: output path is a symlink; give the directory it points to")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output path is a file, expected a directory")
    anchor = _existing_ancestor(out)
    if not anchor.is_dir():
        raise InputError(f"{anchor}: output path is inside a file, expected a directory")
    # Try it: os.access says yes to root even where writing fails (read-only mounts, /proc).
    try:
        probe = tempfile.mkdtemp(prefix=".scalectl-probe-", dir=anchor)
    except OSError as exc:
        raise InputError(
            f"{anchor}: output directory is not writable ({exc.strerror or exc})"
        ) from None
    os.rmdir(probe)


def write_tree(out: Path, files: Files, warn: Warn = _ignore) -> list[str]:
    """Write `files` under `out`; remove files a previous render wrote that are gone now.

    Everything is written to a staging directory first, then moved into place, so a
    failure while writing leaves the previous output untouched. Nothing is written or
    removed through a symlink or outside `out` (issue 11: --out may come from a PR).
    """
    preflight(out)
    _refuse_unsafe(out, files)
    stale = [rel for rel in _manifest(out, warn) if rel not in files]
    anchor = _existing_ancestor(out)
    staging: Path | None = None
    try:
        staging = Path(tempfile.mkdtemp(prefix=".scalectl-", dir=anchor))
        for rel, content in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        manifest = sorted(files)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        out.mkdir(parents=True, exist_ok=True)
        for rel in [*manifest, MANIFEST]:
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, dest)
        for rel in stale:
            (out / rel).unlink(missing_ok=True)
        return manifest
    except OSError as exc:
        raise InputError(f"{out}: cannot write output: {exc.strerror or exc}") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def diff_tree(out: Path, files: Files, warn: Warn = _ignore) -> str:
    """A unified diff from what is under `out` to `files`; empty when identical."""
    _refuse_unsafe(out, files)
    chunks: list[str] = []
    old_paths = set(_manifest(out, warn)) | {rel for rel in files if _regular(out / rel)}
    for rel in sorted(old_paths | set(files)):
        old = _read_old(out / rel)
        new = files.get(rel)
        if old == new:
            continue
        chunks.extend(
            difflib.unified_diff(
                _lines(old),
                _lines(new),
                fromfile=f"a/{rel}" if old is not None else "/dev/null",
                tofile=f"b/{rel}" if new is not None else "/dev/null",
            )
        )
    return "".join(chunks)


def _lines(content: bytes | None) -> list[str]:
    if content is None:
        return []
    return content.decode("utf-8", errors="replace").splitlines(keepends=True)


def _read_old(path: Path) -> bytes | None:
    if not _regular(path):
        return None
    try:
        return read_bounded(path, MAX_OLD_BYTES)
    except InputError:
        return None  # too big to diff: shown as wholly replaced


def _safe_name(rel: str) -> bool:
    """A relative name that stays inside its directory: no absolute path, `..`, `.` or NUL."""
    if not rel or "\0" in rel or "\\" in rel or rel.startswith("/"):
        return False
    parts = PurePosixPath(rel).parts
    return all(part not in ("", ".", "..") for part in parts)


def _symlink_on_path(out: Path, rel: str) -> Path | None:
    """The first symlink between `out` (exclusive) and `out/rel` (inclusive), if any."""
    probe = out
    for part in PurePosixPath(rel).parts:
        probe = probe / part
        if probe.is_symlink():
            return probe
        if not probe.exists():
            return None
    return None


def _confined(out: Path, rel: str) -> bool:
    root = out.resolve()
    return (root / rel).resolve().is_relative_to(root)


def _refuse_unsafe(out: Path, files: Files) -> None:
    """Refuse before touching anything: a name leaving `out`, or a symlink on the way."""
    problems: list[str] = []
    for rel in [*files, MANIFEST]:
        link = _symlink_on_path(out, rel) if _safe_name(rel) else None
        if link is not None:
            problems.append(f"{link}: is a symlink; scalectl does not write through symlinks")
        elif not _safe_name(rel) or not _confined(out, rel):
            problems.append(f"{out / rel}: outside the output directory")
    if problems:
        raise InputError(f"{out}: unsafe output directory", lines=sorted(set(problems)))


def _manifest(out: Path, warn: Warn) -> list[str]:
    """Names an earlier render wrote, each checked: the manifest may have been edited."""
    path = out / MANIFEST
    if path.is_symlink():
        warn(f"{path}: is a symlink; ignored")
        return []
    try:
        data = json.loads(read_bounded(path, MAX_OLD_BYTES))
    except (InputError, ValueError):
        return []
    if not isinstance(data, list):
        warn(f"{path}: not a list of names; ignored")
        return []
    names: list[str] = []
    for entry in data:
        if not isinstance(entry, str) or not _safe_name(entry):
            warn(f"{path}: ignoring entry '{shown(entry)}': not a relative name inside {out}")
        elif _symlink_on_path(out, entry) is not None or not _confined(out, entry):
            warn(f"{path}: ignoring entry '{shown(entry)}': reached through a symlink")
        elif (out / entry).exists() and not _regular(out / entry):
            warn(f"{path}: ignoring entry '{shown(entry)}': not a regular file")
        else:
            names.append(entry)
    return names


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _existing_ancestor(path: Path) -> Path:
    probe = path.absolute()
    while not probe.exists():
        probe = probe.parent
    return probe


def write_file(path: Path, content: bytes) -> None:
    """Write one file atomically: a temp file beside it, then a rename."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file path")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise InputError(f"{parent}: no such directory")
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


TAIL_BYTES = 64 * 1024  # enough for the last lines of a log; a log may be gigabytes


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last `lines` lines of a log (read from its last 64 KiB only); none when it cannot
    be read."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - TAIL_BYTES))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if len(data) == TAIL_BYTES and size > TAIL_BYTES:
        text = text[1:]  # the first line read may be cut
    return text[-lines:]


def read_json(path: Path, limit: int = MAX_JSON_BYTES) -> Any:
    """The JSON document in the regular file at `path`, read only when at most `limit` bytes.
    Raises InputError, one line naming the file, when it is missing, unreadable, larger,
    not UTF-8, not JSON, or nested deeper than the parser goes: reports and state files
    are untrusted."""
    raw = read_bounded(path, limit)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise InputError(f"{path}: not valid JSON (nested too deeply)") from None
