"""Data shipped inside the package (templates, scenarios, the reference app), read the same
way from a checkout and from an installed wheel.

The data lives at the repository's top level (templates/, scenarios/, reference_app/). The
wheel maps each folder into the package (hatch force-include), so an installed scalectl
finds them under `scalectl/`; an editable install or a checkout finds them beside `src/`.
No symlinks: an sdist would drop them.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

# The folders the wheel carries under the package (pyproject.toml, force-include).
DATA_DIRS = ("templates", "scenarios", "reference_app")


def data_dir(name: str) -> Traversable:
    """One of DATA_DIRS, from the installed package or else from the checkout."""
    if name not in DATA_DIRS:
        raise ValueError(f"not a packaged data folder: {name}")
    packaged = files("scalectl").joinpath(name)
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / name


def template(name: str) -> Traversable:
    """The packaged template `name` (a /-separated path under templates/)."""
    return data_dir("templates").joinpath(*name.split("/"))


def read_template(name: str) -> str:
    """The text of the packaged template `name`."""
    return template(name).read_text(encoding="utf-8")
