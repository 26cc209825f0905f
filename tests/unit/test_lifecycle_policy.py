"""The exit-code policy of a drill run (lifecycle/policy.py) as a table of cases."""

from __future__ import annotations

import pytest

from ctdrill.engine.signals import StopRequested
from ctdrill.engine.verdict import Verdict
from ctdrill.errors import EnvironmentProblem, ExitCode, InvalidInput
from ctdrill.journal import JournalWriteFailed
from ctdrill.lifecycle.policy import Abort, ApplyFailed, exit_code, journal_failure, on_error

SIGINT = "interrupted by SIGINT (Ctrl-C)"
PASS, FAIL = Verdict("a", True, None, ""), Verdict("b", False, 1.0, "")


@pytest.mark.parametrize(("exc", "stop", "prepared", "want"), [
    (StopRequested("guard: ctr on gw is 0.95 > 0.9"), None, True,
     Abort("guard: ctr on gw is 0.95 > 0.9")),
    (StopRequested(SIGINT), SIGINT, True, Abort(SIGINT)),
    (StopRequested(SIGINT), SIGINT, False, Abort(SIGINT)),  # a stop before prepare aborts
    (ApplyFailed("apply failed on gw: sysctl: boom"), None, True,
     Abort("apply failed on gw: sysctl: boom")),
    (ApplyFailed("apply failed on gw"), SIGINT, True, Abort(SIGINT)),  # the signal wins
    (EnvironmentProblem("telemetry lost", "check"), None, True, Abort("telemetry lost: check")),
    (EnvironmentProblem("telemetry lost", "check"), SIGINT, True, Abort(SIGINT)),
    (EnvironmentProblem("unreachable", "check"), None, False,
     Abort("unreachable: check", refused=True)),
    (InvalidInput("plan refused"), SIGINT, False, Abort("plan refused", refused=True)),
    (RuntimeError("bug"), None, True, Abort("internal error: RuntimeError('bug')", bug=True)),
    (RuntimeError("bug"), SIGINT, False, Abort("internal error: RuntimeError('bug')", bug=True)),
])
def test_each_exception_maps_to_one_abort(exc: Exception, stop: str | None, prepared: bool,
                                          want: Abort) -> None:
    assert on_error(exc, stop_reason=stop, prepared=prepared) == want


ABORT = Abort("guard: ctr")
JOURNAL = "journal: writing 'metrics' failed (1 records not journaled; the hosts were reverted)"


@pytest.mark.parametrize(("abort", "verdicts", "reverted", "stop", "journal", "want"), [
    (None, [], True, None, None, (ExitCode.OK, None)),
    (None, [PASS], True, None, None, (ExitCode.OK, None)),
    (None, [PASS, FAIL], True, None, None, (ExitCode.EXPECTATIONS_FAILED, None)),
    (ABORT, [PASS, FAIL], True, None, None, (ExitCode.ABORTED, "guard: ctr")),
    (ABORT, [], False, None, None, (ExitCode.REVERT_FAILED, "guard: ctr")),
    (None, [FAIL], False, None, None, (ExitCode.REVERT_FAILED, None)),
    # a signal after the last checkpoint turns a clean run into an abort, nothing else
    (None, [PASS], True, SIGINT, None, (ExitCode.ABORTED, SIGINT)),
    (None, [FAIL], True, SIGINT, None, (ExitCode.EXPECTATIONS_FAILED, None)),
    (None, [], False, SIGINT, None, (ExitCode.REVERT_FAILED, None)),
    # a failed journal after prepare is 4 whatever else happened, with its own reason
    (None, [PASS], True, None, JOURNAL, (ExitCode.REVERT_FAILED, JOURNAL)),
    (ABORT, [], True, SIGINT, JOURNAL, (ExitCode.REVERT_FAILED, JOURNAL)),
])
def test_exit_code_table(abort: Abort | None, verdicts: list[Verdict], reverted: bool,
                         stop: str | None, journal: str | None,
                         want: tuple[ExitCode, str | None]) -> None:
    assert exit_code(abort=abort, verdicts=verdicts, reverted_ok=reverted, stop_reason=stop,
                     journal_failed=journal) == want


def test_a_failed_journal_counts_only_once_hosts_were_prepared() -> None:
    err = JournalWriteFailed("journal j: writing 'metrics' failed (ENOSPC)", "free space")
    assert journal_failure(err, 3, prepared=False) is None
    assert journal_failure(None, 0, prepared=True) is None
    assert journal_failure(err, 3, prepared=True) == (
        "journal j: writing 'metrics' failed (ENOSPC): free space (3 records not "
        "journaled; the hosts were reverted)")
