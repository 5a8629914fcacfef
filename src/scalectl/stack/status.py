"""What the stack is doing now: each member's process, port, health and uptime."""

from __future__ import annotations

import time
from dataclasses import dataclass

from scalectl.netguard import loopback_client
from scalectl.stack.process import member_process, unverifiable
from scalectl.stack.state import StackState


@dataclass(frozen=True)
class MemberStatus:
    """One member's line of `scalectl stack status`."""

    name: str
    kind: str
    pid: int
    port: int | None
    state: str  # running | crashed
    health: str  # pass | fail | n/a
    detail: str
    uptime_seconds: float | None


def status(state: StackState, *, timeout: float = 2.0) -> list[MemberStatus]:
    """Each member of `state`: whether its process still runs (as recorded: same pid, start
    time, executable and command line) and whether it answers its health URL within
    `timeout` seconds. Raises nothing: a member that cannot be reached is reported so."""
    out = []
    now = time.time()
    with loopback_client(timeout) as client:
        for m in state.members:
            proc = member_process(m)
            if proc is None:
                detail = (
                    "not verified: the state does not record what was started (older scalectl)"
                    if unverifiable(m)
                    else "process is gone"
                )
                out.append(
                    MemberStatus(m.name, m.kind, m.pid, m.port, "crashed", "fail", detail, None)
                )
                continue
            health, detail = "n/a", ""
            if m.health_url:
                try:
                    response = client.get(m.health_url)
                    health = "pass" if response.status_code == 200 else "fail"
                    detail = f"{m.health_url} -> {response.status_code}"
                except Exception as exc:  # connection refused, timeout: unhealthy, not a crash
                    health, detail = "fail", f"{m.health_url}: {type(exc).__name__}"
            out.append(
                MemberStatus(
                    m.name, m.kind, m.pid, m.port, "running", health, detail, now - m.create_time
                )
            )
    return out
