"""Step 6, report: the run's own account of itself, its `end` record.

The run writes no report files: `ctdrill report JOURNAL` (and a game day, after each
drill) builds them from the journal this step closes. The `end` record carries the
exit code, the reason and the timings, so the journal alone tells how the run ended.
"""

from __future__ import annotations

from ctdrill.lifecycle.context import RunContext
from ctdrill.lifecycle.outcome import DrillOutcome


def report(ctx: RunContext) -> DrillOutcome:
    """Journal `end` and close the journal; returns the outcome."""
    outcome = ctx.outcome
    outcome.timings["total"] = ctx.budget.wall() - ctx.budget.started
    ctx.journal.try_write("end", exit_code=int(outcome.exit_code), reason=outcome.reason,
                          timings=outcome.timings)
    ctx.journal.close()
    return outcome
