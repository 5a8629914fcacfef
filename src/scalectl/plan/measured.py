"""Where a plan's `capacity.per_replica_rps` came from: the comment `scalectl loadtest
capacity --write` leaves on its line (date, commit, measured interval), the one-line edit
that writes it, and the warnings `scalectl plan` gives for a capacity with no measurement
behind it or with an old one (docs/sizing.md, "Measuring capacity").

The plan's text is edited, never re-dumped: every other byte, comment and key order stays.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scalectl.errors import InputError
from scalectl.yamlsource import Located, parse, read_bounded

FIELD = ("capacity", "per_replica_rps")
MEASURED = re.compile(r"#\s*measured (\d{4}-\d{2}-\d{2})\b")
DEFAULT_MAX_AGE_DAYS = 90
_NUMBER = re.compile(r"[0-9][0-9_.eE+-]*")


@dataclass(frozen=True)
class CapacityLine:
    """The line holding one service's per_replica_rps: its index (0-based), where the
    number starts and ends on it, and the comment at its end (empty without one)."""

    index: int
    start: int
    end: int
    comment_at: int  # where the trailing comment (with its leading spaces) starts
    comment: str

    @property
    def measured_on(self) -> dt.date | None:
        """The date of the measurement comment, None without one."""
        found = MEASURED.search(self.comment)
        if not found:
            return None
        try:
            return dt.date.fromisoformat(found.group(1))
        except ValueError:
            return None


def read_plan(path: Path) -> tuple[str, Located]:
    """The plan's text and its parse (with positions). Raises InputError when unreadable."""
    raw = read_bounded(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    return text, parse(text, str(path))


def capacity_line(text: str, located: Located, service: str) -> CapacityLine:
    """Where `service`'s per_replica_rps is written in `text`. Raises InputError when the
    plan has no such service or field, or writes it in a way one line cannot be edited (an
    alias, a merge key, a quoted or multi-line value)."""
    path = ("services", service, *FIELD)
    services = (located.data or {}).get("services") or {}
    if service not in services:
        known = ", ".join(sorted(map(str, services))) or "none"
        raise InputError(f"{located.file}: no service '{service}' (services: {known})")
    if path not in located.values or path not in located.keys:
        raise InputError(f"{located.file}: services.{service}.capacity.per_replica_rps is not set")
    mark = located.values[path]
    lines = text.split("\n")
    line = lines[mark.line - 1].rstrip("\r")
    start = mark.col - 1
    number = _NUMBER.match(line, start)
    # An alias or merge key takes the value from an anchor above the service: editing it
    # there would change every place that uses it.
    inside = mark.line > located.keys[("services", service)].line
    if not inside or located.keys[path].line != mark.line or number is None:
        raise InputError(
            f"{mark} services.{service}.capacity.per_replica_rps: not a plain number on its "
            "key's line (an alias or merge key?); edit it by hand"
        )
    comment_at = _comment_start(line, number.end())
    return CapacityLine(mark.line - 1, start, number.end(), comment_at, line[comment_at:].strip())


def _comment_start(line: str, pos: int) -> int:
    """Where a trailing `#` comment starts after `pos`, with the blanks before it; the end
    of the line without one. Quoted text after the number (a flow mapping's other values)
    is skipped."""
    quote = ""
    for i in range(pos, len(line)):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return len(line[:i].rstrip(" \t"))
    return len(line.rstrip(" \t"))


def commit_of(directory: Path) -> str | None:
    """The short commit checked out where the plan lives, '+dirty' when it has changes; None
    outside a git repository or without git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def measurement_comment(low: float, high: float, gate: str, on: dt.date, commit: str | None) -> str:
    """The comment written beside the value: '# measured 2026-12-05, commit abc1234: 183-196
    rps held p95 <= 300 ms, errors <= 0.01 (scalectl loadtest capacity)'."""
    where = f", commit {commit}" if commit else ""
    return (
        f"# measured {on.isoformat()}{where}: {low:g}-{high:g} rps held {gate} "
        "(scalectl loadtest capacity)"
    )


def written_value(low: float) -> str:
    """The rate written: the interval's low end rounded down (whole requests/s from 10 up)."""
    if low >= 10:
        return str(math.floor(low))
    return f"{math.floor(low * 10) / 10:g}"


def with_capacity(text: str, located: Located, service: str, value: str, comment: str) -> str:
    """`text` with `service`'s per_replica_rps set to `value` and its trailing comment
    replaced by `comment`: that one line changes, every other byte stays."""
    where = capacity_line(text, located, service)
    lines = text.split("\n")
    old = lines[where.index]
    ending = "\r" if old.endswith("\r") else ""
    body = old.rstrip("\r")
    rest = body[where.end : where.comment_at]
    lines[where.index] = f"{body[: where.start]}{value}{rest}  {comment}{ending}"
    return "\n".join(lines)


def diff(path: Path, old: str, new: str) -> str:
    """A unified diff of the plan's text, as `--write` would change it."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=str(path),
            tofile=str(path),
        )
    )


def capacity_warnings(
    path: Path, max_age_days: float | None, today: dt.date | None = None
) -> list[str]:
    """For each service of the plan at `path`: a warning when its per_replica_rps has no
    measurement comment, or one older than `max_age_days` (None: no age limit). Empty for
    a plan whose capacities are all measured recently enough."""
    text, located = read_plan(path)
    today = today or dt.date.today()
    out = []
    for service in sorted((located.data or {}).get("services") or {}):
        try:
            line = capacity_line(text, located, str(service))
        except InputError:
            continue  # not a plain value: the schema's own checks speak for it
        field = f"{path}:{line.index + 1} services.{service}.capacity.per_replica_rps"
        how = (
            f"measure it: scalectl loadtest capacity --plan {path} --service {service} "
            f"--write {path}"
        )
        measured = line.measured_on
        if measured is None:
            out.append(f"{field} has no measurement behind it; {how}")
        elif max_age_days is not None and (today - measured).days > max_age_days:
            out.append(
                f"{field} was measured on {measured.isoformat()}, {(today - measured).days} "
                f"days ago (more than {max_age_days:g}); {how}"
            )
    return out
