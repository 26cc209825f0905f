"""The exit-code policy of a drill run, in one place (pure).

How each way out of a run maps to an exit code and a reason:

- every verdict passed, reverted and verified: 0 OK, no reason;
- a verdict failed: 1 EXPECTATIONS_FAILED, no reason;
- a stop (signal, guard, a guard tripped between rollout waves) or a failed change:
  3 ABORTED, the operator's signal if there was one, else the stop's text;
- a user-fixable error (CtdrillError) after prepare: 3 ABORTED, the signal, else the
  error's one line; before prepare nothing needs reverting: journaled `refused` and
  raised, so it exits with its own code (2 or 5);
- any other exception (a bug): 3 ABORTED, "internal error: ...", traceback journaled;
- a signal that arrived after the last checkpoint of an otherwise clean run: 3 ABORTED;
- a host's revert not verified: 4 REVERT_FAILED, reason unchanged;
- the journal failed after prepare: 4 REVERT_FAILED, the journal error and the count of
  records dropped (the hosts were reverted, but the record is not whole).

Later items win over earlier ones (see `exit_code`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ctdrill.engine.signals import StopRequested
from ctdrill.engine.verdict import Verdict
from ctdrill.errors import CtdrillError, ExitCode


class ApplyFailed(Exception):
    """A change failed on a host; what was applied anywhere is reverted."""


@dataclass(frozen=True)
class Abort:
    """How the run ends after an exception: what to journal, and whether to re-raise."""

    reason: str
    refused: bool = False
    """Nothing was prepared: journal `refused`, close the journal, re-raise the error
    (the caller reports it as one line with its own exit code)."""
    bug: bool = False
    """Not a stop nor a user-fixable error: journal the traceback with the abort."""


def on_error(exc: Exception, *, stop_reason: str | None, prepared: bool) -> Abort:
    """The abort an exception means. The operator's signal, when there was one, is the
    reason: a Ctrl-C also ends local agents, and that must read as the interrupt."""
    if isinstance(exc, (StopRequested, ApplyFailed)):
        return Abort(stop_reason or str(exc))
    if isinstance(exc, CtdrillError):
        if not prepared:
            return Abort(exc.one_line(), refused=True)
        return Abort(stop_reason or exc.one_line())
    return Abort(f"internal error: {exc!r}", bug=True)


def journal_failure(error: CtdrillError | None, dropped: int, *,
                    prepared: bool) -> str | None:
    """The reason a run ends 4 when its journal failed after prepare: the hosts were
    reverted, but the record of the run is not whole."""
    if not prepared or error is None:
        return None
    return (f"{error.one_line()} ({dropped} records not journaled; the hosts were "
            "reverted)")


def exit_code(*, abort: Abort | None, verdicts: Iterable[Verdict], reverted_ok: bool,
              stop_reason: str | None, journal_failed: str | None,
              ) -> tuple[ExitCode, str | None]:
    """The run's exit code and reason from what happened (the table above)."""
    code, reason = ExitCode.OK, None
    if abort is not None:
        code, reason = ExitCode.ABORTED, abort.reason
    elif not all(v.passed for v in verdicts):
        code = ExitCode.EXPECTATIONS_FAILED
    if not reverted_ok:
        code = ExitCode.REVERT_FAILED
    if stop_reason and code == ExitCode.OK:
        code, reason = ExitCode.ABORTED, stop_reason
    if journal_failed is not None:
        code, reason = ExitCode.REVERT_FAILED, journal_failed
    return code, reason
