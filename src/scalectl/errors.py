"""The one error hierarchy and the exit codes it maps to (README: "Exit codes")."""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum


class ExitCode(IntEnum):
    """scalectl's documented exit codes (README, "Exit codes")."""

    OK = 0
    CHECK_FAILED = 1  # an SLO breach, unhealthy target, incomplete checklist, infeasible plan
    BAD_INPUT = 2  # bad input or usage
    INTERNAL = 3  # a bug: short message plus the path of a log with the traceback
    INCONCLUSIVE = 4  # the measurement cannot support a verdict (used by loadtest)
    REGRESSED = 5  # `loadtest compare`: NEW is worse than BASE beyond the tolerance
    INTERRUPTED = 130


class ScalectlError(Exception):
    """Base of every error scalectl reports to the user without a traceback."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, lines: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        # Extra lines printed after the message, one per problem.
        self.lines: tuple[str, ...] = tuple(lines)


class InputError(ScalectlError):
    """The user gave us something we cannot use: a bad file, flag or value."""

    exit_code = ExitCode.BAD_INPUT


class CheckFailed(ScalectlError):
    """The input is fine but the thing it describes does not hold up."""

    exit_code = ExitCode.CHECK_FAILED


class Inconclusive(ScalectlError):
    """The measurement cannot support a verdict: exit 4, never a pass."""

    exit_code = ExitCode.INCONCLUSIVE
