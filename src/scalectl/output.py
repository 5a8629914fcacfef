"""Consoles and output modes, decided once per invocation and passed down."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console


def wants_colour(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
    if environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@dataclass
class Output:
    """Where a command writes: rich consoles for people, stdout JSON for machines."""

    json_mode: bool = False
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)

    def __post_init__(self) -> None:
        colour = wants_colour(self.stdout, self.environ)
        err_colour = wants_colour(self.stderr, self.environ)
        self.console = Console(
            file=self.stdout,
            no_color=not colour,
            force_terminal=colour,
            highlight=False,
            soft_wrap=not colour,
            width=None if colour else 120,
        )
        self.err = Console(
            file=self.stderr,
            no_color=not err_colour,
            force_terminal=err_colour,
            highlight=False,
            soft_wrap=True,
        )

    @property
    def interactive(self) -> bool:
        """Spinners and live displays only for a person at a terminal."""
        return self.console.is_terminal and not self.json_mode

    def emit_json(self, payload: Any) -> None:
        self.stdout.write(json.dumps(payload, indent=2, sort_keys=False) + "\n")
        self.stdout.flush()

    def info(self, text: str) -> None:
        """A progress or status line for people; kept off stdout in JSON mode."""
        (self.err if self.json_mode else self.console).print(text, markup=False)

    def warn(self, text: str) -> None:
        self.err.print(f"warning: {text}", markup=False, style="yellow")

    def error(self, text: str) -> None:
        self.err.print(text, markup=False, style="red")
