from __future__ import annotations

from pathlib import Path

from scalectl.stack.process import free_port, port_in_use
from scalectl.stack.run import default_plan


def free_block(size: int) -> int:
    """A first port with `size` free ports after it (bounded search)."""
    for _ in range(50):
        base = free_port()
        if base + size < 65000 and not any(port_in_use(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free block of loopback ports")


def local_plan(directory: Path) -> Path:
    """The reference app's plan with its local profile moved to free loopback ports."""
    text = default_plan().read_text()
    text = text.replace("listen: 127.0.0.1:8080", f"listen: 127.0.0.1:{free_port()}")
    text = text.replace("base_port: 18000", f"base_port: {free_block(4)}")
    path = directory / "plan.yaml"
    path.write_text(text)
    return path
