"""The traceback of an internal error, kept where only its user can read it.

A crash log goes to the user's state dir ($XDG_STATE_HOME/scalectl, else
~/.local/state/scalectl), created 0600 with O_EXCL|O_NOFOLLOW: never a predictable /tmp
name another user could plant a symlink at. Option values that may be secrets (headers,
tokens, passwords) and passwords in URLs are redacted from the argv it records (issue 11,
finding 8).
"""

from __future__ import annotations

import datetime
import os
import re
import stat
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

REDACTED = "<redacted>"
# Options whose value is redacted: headers (-H is also loadtest's host, which may carry
# credentials in its URL), and anything named like a credential.
_SECRET_OPTIONS = {"-H", "--header", "-u", "--user", "--auth"}
_SECRET_WORDS = ("token", "secret", "password", "passwd", "key", "auth", "cookie", "header")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def _secret_option(option: str) -> bool:
    name = option.lower()
    return option in _SECRET_OPTIONS or (
        name.startswith("--") and any(word in name for word in _SECRET_WORDS)
    )


def redact_argv(argv: Sequence[str]) -> list[str]:
    """argv with the values of secret-looking options and URL credentials replaced."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        option, eq, _ = arg.partition("=")
        if option.startswith("-") and _secret_option(option):
            if eq:
                out.append(f"{option}={REDACTED}")
            elif arg in _SECRET_OPTIONS or arg.startswith("--"):
                out.append(arg)
                hide_next = True
            else:
                out.append(REDACTED)
            continue
        if len(arg) > 2 and arg[:2] in ("-H", "-u") and not arg.startswith("--"):
            out.append(f"{arg[:2]}{REDACTED}")  # -HValue
            continue
        out.append(_URL_USERINFO.sub(rf"\g<scheme>{REDACTED}@", arg))
    return out


def state_dir(environ: Mapping[str, str]) -> Path:
    """The user's scalectl state directory: $XDG_STATE_HOME/scalectl or
    ~/.local/state/scalectl."""
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "scalectl"


def _private_dir(directory: Path) -> bool:
    """Create `directory` (0700) if missing; True when it is a real directory of ours
    that nobody else can write to."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o022


def write(environ: Mapping[str, str], argv: Sequence[str], version: str, trace: str) -> Path:
    """Write a crash log and return its path. Without a usable state dir, a fresh private
    directory (mkdtemp, 0700) holds it; when even that fails, a path-like note saying so."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    text = f"scalectl {version}\nargv: {redact_argv(argv)}\n\n{trace}"
    name = f"scalectl-crash-{stamp}-{os.getpid()}.log"
    directory = state_dir(environ)
    candidates = [directory] if _private_dir(directory) else []
    for index in range(2):
        if index == len(candidates):
            try:
                candidates.append(Path(tempfile.mkdtemp(prefix="scalectl-crash-")))
            except OSError:
                break
        path = candidates[index] / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError:
            continue
        with os.fdopen(fd, "w") as out:
            out.write(text)
        return path
    return Path("(could not write a crash log)")
