"""Taking an app instance out of the stack's nginx before it stops, and back in once it is
healthy: what endpoint removal and the preStop sleep of the rendered Kubernetes manifests do.

Without it, an instance that closes its idle keep-alive connections on SIGTERM races nginx:
nginx may have just written a POST to one of them, and it never retries a request that
reached an upstream unless the method is idempotent, so that user gets a 502. Marked `down`
and reloaded, nginx stops using the instance's connections before they close."""

from __future__ import annotations

import contextlib
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from scalectl.stack.process import member_process, wait_gone
from scalectl.stack.shutdown import Progress
from scalectl.stack.state import Member, StackState

RELOAD_TIMEOUT = 15.0  # old nginx workers finish their requests in flight, then exit
_UPSTREAM = re.compile(r"^\s*upstream\s+\S+\s*\{\s*$")
_SERVER = re.compile(r"^(?P<head>\s*server\s+(?P<addr>\S+?))(?P<params>(?:\s+[^;\s]+)*)\s*;\s*$")
# One drain at a time: each edits the one nginx.conf and waits for its own reload.
_LOCK = threading.RLock()


def conf_path(state: StackState) -> Path:
    """The nginx.conf the stack's nginx runs with (its copy in the state dir)."""
    return Path(state.state_dir) / "nginx" / "conf" / "nginx.conf"


def mark(text: str, port: int, *, down: bool) -> str | None:
    """`text` with the upstream servers on loopback `port` marked `down` (or no longer),
    or None when nothing would change, or when marking them would leave an upstream with
    no server up (a stack of one instance has nowhere else to send its traffic)."""
    lines = text.splitlines(keepends=True)
    changed = False
    block: list[int] = []  # indexes of the current upstream's server lines
    inside = touched = False
    for i, line in enumerate(lines):
        if _UPSTREAM.match(line):
            inside, touched, block = True, False, []
            continue
        if inside and line.strip() == "}":
            inside = False
            if down and touched and all(_is_down(lines[j]) for j in block):
                return None
            continue
        found = _SERVER.match(line) if inside else None
        if found is None:
            continue
        block.append(i)
        if not found["addr"].endswith(f":{port}"):
            continue
        params = [p for p in found["params"].split() if p != "down"]
        if down:
            params.append("down")
        end = "\n" if line.endswith("\n") else ""
        new = f"{found['head']}{''.join(f' {p}' for p in params)};{end}"
        touched = touched or new != line
        changed = changed or new != line
        lines[i] = new
    return "".join(lines) if changed else None


def _is_down(line: str) -> bool:
    found = _SERVER.match(line)
    return found is not None and "down" in found["params"].split()


@contextlib.contextmanager
def drained(
    state: StackState, member: Member, progress: Progress = lambda _: None
) -> Iterator[bool]:
    """While inside, nginx sends `member` no request (yields whether it was taken out: not
    when the stack has no running nginx, or no other instance to take the traffic)."""
    with _LOCK:
        nginx = state.member("nginx")
        proc = member_process(nginx) if nginx else None
        path = conf_path(state)
        edited = None
        if proc is not None and member.kind == "app" and member.port and path.is_file():
            edited = mark(path.read_text(encoding="utf-8"), member.port, down=True)
        if proc is None or edited is None or member.port is None:
            yield False
            return
        progress(f"taking {member.name} out of nginx")
        _reload(proc, path, edited)
        try:
            yield True
        finally:
            back = mark(path.read_text(encoding="utf-8"), member.port, down=False)
            if back is not None:
                progress(f"putting {member.name} back into nginx")
                _reload(proc, path, back)


def _reload(master: psutil.Process, path: Path, text: str) -> None:
    """Write the new configuration and reload nginx; return once the workers that ran the
    old one have exited, so no request goes by the old configuration any more."""
    from scalectl.files import write_file  # slow to import; `stack down` never drains

    with contextlib.suppress(psutil.Error):
        old = master.children()
        write_file(path, text.encode("utf-8"))
        master.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT
        # The master starts the new workers before it tells the old ones to stop.
        while time.monotonic() < deadline and not _new_children(master, old):
            time.sleep(0.02)
        wait_gone(old, timeout=max(0.0, deadline - time.monotonic()))


def _new_children(master: psutil.Process, old: list[psutil.Process]) -> bool:
    known = {p.pid for p in old}
    with contextlib.suppress(psutil.Error):
        return any(p.pid not in known for p in master.children())
    return False
