"""The base of every model read from a user's file (plans, SLO files, health configs,
checklists and their verifiers' parameters)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown keys are errors (a typo must not be silently ignored), values are frozen, and
    numbers are finite: an `.inf` threshold or timeout is a plan-file trick (issue 11)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
