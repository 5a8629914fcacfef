"""The local stack's passwords: PostgreSQL's SCRAM password and each Redis's `requirepass`.

Generated once per state directory and kept in `<state_dir>/secrets/` (0700, files 0600),
so the persistent broker and PostgreSQL data keep working across `stack down` / `up`.
They reach the servers through files and the app through its environment, never argv
(readable by every user in /proc), logs or state.json, whose URLs carry no password
(issue 11, finding 8; docs/stack.md, "Secrets").
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from scalectl.errors import InputError

SECRETS_DIR = "secrets"
# One password per server; the state.json URL key each one belongs to.
NAMES = ("postgres", "redis", "broker")
URL_KEYS = {"database": "postgres", "redis": "redis", "broker": "broker"}


def new_password() -> str:
    """A random password that is safe unquoted in URLs and config files."""
    return secrets.token_urlsafe(24)


def write_private(path: Path, text: str) -> None:
    """Create `path` as a new 0600 file holding `text`. OSError (FileExistsError) when
    something is there already: it never follows or replaces an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def secrets_dir(state_dir: Path) -> Path:
    """The directory of the stack's password files in `state_dir`."""
    return state_dir / SECRETS_DIR


def ensure(state_dir: Path) -> dict[str, str]:
    """The stack's passwords, created on first use: name -> password. InputError when
    the secrets directory or a password file is not ours alone."""
    directory = secrets_dir(state_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private_dir(directory)
    for name in NAMES:
        path = directory / name
        if not path.is_symlink() and not path.exists():
            write_private(path, new_password() + "\n")
    return {name: password(state_dir, name) for name in NAMES}


def password(state_dir: Path, name: str) -> str:
    """One stored password; InputError when missing or not a private regular file."""
    path = secrets_dir(state_dir) / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise InputError(
            f"{path}: missing; the stack's passwords live there (run `scalectl stack up`)"
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the stack's password ({exc.strerror})") from None
    with os.fdopen(fd) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077 or info.st_uid != os.geteuid():
            raise InputError(f"{path}: must be a regular file of yours with mode 0600")
        value = handle.read().strip()
    if not value:
        raise InputError(f"{path}: empty password file")
    return value


def _check_private_dir(directory: Path) -> None:
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise InputError(f"{directory}: must be a directory of yours (not a symlink)")
    if info.st_mode & 0o077:
        directory.chmod(0o700)  # ours, inside the state dir: keep it private


def with_password(url: str, password: str) -> str:
    """`url` with `password` in its userinfo (kept in memory, never written)."""
    parts = urlsplit(url)
    user = quote(parts.username or "", safe="")
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}{port}"))


def without_password(url: str) -> str:
    """`url` with any password removed, for state.json and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{quote(parts.username or '', safe='')}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}{parts.hostname or ''}{port}"))


def authenticated_url(state_dir: Path, urls: dict[str, str], key: str) -> str:
    """The stack's URL `key` (database, redis, broker) with its password from the secret
    file: how scalectl's own clients (drills, checklist verifiers) connect. KeyError when
    `urls` has no `key`; InputError when its password file is missing or not private."""
    return with_password(urls[key], password(state_dir, URL_KEYS[key]))
