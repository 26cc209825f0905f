"""One error type for everything a user can fix, with the exit code it maps to.

The CLI turns a `CtdrillError` into one line on stderr and its exit code, never a
traceback: the message says what is wrong, the hint says what to do.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; the README documents the same table."""

    OK = 0
    EXPECTATIONS_FAILED = 1
    INVALID_INPUT = 2
    ABORTED = 3
    REVERT_FAILED = 4
    ENVIRONMENT = 5
    SKIPPED = 6
    """A game-day run correctly not started (blackout window, or a live run holds the
    suite's lock): the only code a systemd unit counts as success besides 0."""


class CtdrillError(Exception):
    """A failure the user can act on."""

    exit_code: ExitCode = ExitCode.INVALID_INPUT

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message}: {self.hint}" if self.hint else self.message


class InvalidInput(CtdrillError):
    """Bad arguments, inventory or spec. Nothing was contacted or changed."""

    exit_code = ExitCode.INVALID_INPUT


class EnvironmentProblem(CtdrillError):
    """The machine or a target is not ready: not root, tool missing, host unreachable."""

    exit_code = ExitCode.ENVIRONMENT
