"""A realistic mix: 70% browsing, 20% submitting, 10% following jobs (by user weight).

Reuses the three scenarios' users unchanged; only the weights are set here. The weights
can be changed with SCALECTL_MIX_BROWSE, SCALECTL_MIX_SUBMIT, SCALECTL_MIX_PIPELINE.

Request names: the union of browse.py, submit.py and pipeline.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# Modules, not classes: a class imported by name would also be picked up as a user.
import browse  # noqa: E402
import common  # noqa: E402
import pipeline  # noqa: E402
import submit  # noqa: E402


class MixBrowseUser(browse.BrowseUser):
    weight = common.env_int("SCALECTL_MIX_BROWSE", 70, minimum=0)


class MixSubmitUser(submit.SubmitUser):
    weight = common.env_int("SCALECTL_MIX_SUBMIT", 20, minimum=0)


class MixPipelineUser(pipeline.PipelineUser):
    weight = common.env_int("SCALECTL_MIX_PIPELINE", 10, minimum=0)
