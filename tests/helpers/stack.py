"""The local stack for tests of any package: free ports, the reference plan on them, and a
real `scalectl stack` started and stopped around a block."""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scalectl.stack.process import port_in_use
from scalectl.stack.run import default_plan


def free_block(size: int) -> int:
    """A first port with `size` free ports after it, below the kernel's ephemeral range: a
    port from that range can be taken by any outgoing connection between a stack's `down`
    and its next `up` (it happened: "ports the plan's local profile needs are in use")."""
    top = max(20_000 + size, min(_ephemeral_low(), 65_000) - size)
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, top)
        if not any(port_in_use(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free block of loopback ports")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def local_plan(directory: Path) -> Path:
    """The reference app's plan with its local profile moved to free loopback ports."""
    text = default_plan().read_text()
    text = text.replace("listen: 127.0.0.1:8080", f"listen: 127.0.0.1:{free_block(1)}")
    text = text.replace("base_port: 18000", f"base_port: {free_block(4)}")
    path = directory / "plan.yaml"
    path.write_text(text)
    return path


@contextmanager
def running_stack(prefix: str) -> Iterator[tuple[Path, Path]]:
    """A real `scalectl stack` on free ports for a test module: (plan, state_dir).

    Not under pytest's basetemp: every pytest session starting on this machine chmods
    /tmp/pytest-of-<user> to 0700, which locks PostgreSQL's unprivileged account out of a
    data directory below it (docs/stack.md: it needs o+x on each parent)."""
    from scalectl.cli import run

    root = Path(tempfile.mkdtemp(prefix=f"scalectl-{prefix}-"))
    root.chmod(0o711)
    plan, state_dir = local_plan(root), root / "state"
    try:
        code = run(
            ["stack", "up", "--plan", str(plan), "--state-dir", str(state_dir), "--timeout", "90"]
        )
        assert code == 0, "stack up failed; see the output above"
        yield plan, state_dir
    finally:
        run(["stack", "down", "--state-dir", str(state_dir)])
        shutil.rmtree(root, ignore_errors=True)
