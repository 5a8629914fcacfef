"""Inputs of action.yml, the composite GitHub Action, as a test on this machine may set them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def install_tools_input(scalectl: Path, env: dict[str, str]) -> str:
    """ "true" (the action's default) only where it installs nothing: as root with every
    required tool present. A test must not apt-get packages onto the machine."""
    if os.geteuid() != 0:
        return "false"
    proc = subprocess.run(
        [str(scalectl), "doctor", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return "true" if proc.returncode == 0 else "false"
