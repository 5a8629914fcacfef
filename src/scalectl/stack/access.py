"""What servers running as another account may reach, and nothing more.

As root, PostgreSQL runs as an unprivileged account and nginx's workers as `nobody`: they
must traverse the path down to their files. scalectl changes modes inside its own state
directory only (issue 11, finding 8: it used to add o+x on every parent up to /). A parent
they cannot traverse is reported, with the fix, instead of opened up.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from scalectl.errors import InputError


class UnreachableDirectory(InputError):
    """A directory above the state dir that other accounts cannot traverse."""


def others_need_access() -> bool:
    """True when some server runs as another account: we are root."""
    return os.geteuid() == 0


def require_traversable(boundary: Path) -> None:
    """Every directory above `boundary` must be traversable by other users (o+x): raises
    UnreachableDirectory, saying which one is not and how to avoid it, rather than
    changing it."""
    for parent in boundary.resolve().parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise UnreachableDirectory(
                f"{parent}: not traversable by other users (mode "
                f"{stat.S_IMODE(parent.stat().st_mode):04o}), so PostgreSQL's and nginx's "
                f"unprivileged accounts cannot reach {boundary}",
                lines=[
                    "use a --state-dir whose parents are all o+x (for example under the "
                    "repository or a directory made with mkdir -m 0711); scalectl changes "
                    "no directory outside its state dir"
                ],
            )


def open_within(boundary: Path, directory: Path) -> None:
    """Make `directory` reachable by other accounts by adding o+x on `boundary` and on each
    directory between it and `directory` (ours, created if missing), never above
    `boundary`, and never group/other write. Raises ValueError when `directory` is not
    inside `boundary`, UnreachableDirectory when a parent of `boundary` is not traversable."""
    boundary = boundary.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory.resolve()
    if target != boundary and boundary not in target.parents:
        raise ValueError(f"{directory} is not inside {boundary}")
    require_traversable(boundary)
    chain = [target, *[p for p in target.parents if p == boundary or boundary in p.parents]]
    for path in chain:
        mode = stat.S_IMODE(path.stat().st_mode)
        wanted = (mode | stat.S_IXOTH) & ~(stat.S_IWGRP | stat.S_IWOTH)
        if wanted != mode:
            path.chmod(wanted)
