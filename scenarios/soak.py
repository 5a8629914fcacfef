"""The mix (70% browse, 20% submit, 10% pipeline) under SoakShape; stops by itself.

Run without -u/-r/-t; see shapes.py and README.md for the SCALECTL_SHAPE_* knobs.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from mix import MixBrowseUser, MixPipelineUser, MixSubmitUser  # noqa: E402
from shapes import SoakShape  # noqa: E402

__all__ = ["MixBrowseUser", "MixPipelineUser", "MixSubmitUser", "SoakShape"]
