"""Write rendered files all-or-nothing, and diff them against what is on disk."""

from __future__ import annotations

import difflib
import json
import os
import shutil
import tempfile
from pathlib import Path

from scalectl.errors import InputError

Files = dict[str, bytes]
MANIFEST = ".scalectl-manifest.json"


def preflight(out: Path) -> None:
    """Refuse an output path we cannot use before anything is rendered or written."""
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


def write_tree(out: Path, files: Files) -> list[str]:
    """Write `files` under `out`; remove files a previous render wrote that are gone now.

    Everything is written to a staging directory first, then moved into place, so a
    failure while writing leaves the previous output untouched.
    """
    preflight(out)
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
        stale = [rel for rel in _manifest(out) if rel not in files]
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


def diff_tree(out: Path, files: Files) -> str:
    """A unified diff from what is under `out` to `files`; empty when identical."""
    chunks: list[str] = []
    old_paths = set(_manifest(out)) | {rel for rel in files if (out / rel).is_file()}
    for rel in sorted(old_paths | set(files)):
        old = (out / rel).read_bytes() if (out / rel).is_file() else None
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


def _manifest(out: Path) -> list[str]:
    try:
        data = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return []
    return [str(p) for p in data if isinstance(p, str) and ".." not in Path(p).parts]


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
