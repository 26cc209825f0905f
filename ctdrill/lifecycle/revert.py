"""Step 5, revert: put every prepared host back to its snapshot, verify, unlock.

It runs on every way out of the run once prepare has journaled the revert plans (the
run composes it in a `finally`). Signals are acknowledged and ignored from here on, so
a second Ctrl-C cannot skip it. Records use `try_write`: a journal that already failed
must not stop the revert (the exit policy then reports 4).
"""

from __future__ import annotations

from ctdrill.lifecycle.context import RunContext


def revert(ctx: RunContext) -> None:
    """Revert, verify, disarm and unlock each prepared host; journal each result."""
    ctx.sig.reverting = True
    if not ctx.prepared.done:
        return
    journal, outcome, plans = ctx.journal, ctx.outcome, ctx.prepared.revert_plans()
    ctx.progress("reverting and verifying")
    journal.try_write("reverting", hosts=sorted(plans))
    t = ctx.budget.mono()
    outcome.reverts = ctx.ops.revert({
        h: {"plan": rp, "snapshot": ctx.prepared.snapshots[h]} for h, rp in plans.items()})
    outcome.timings["revert_verify"] = ctx.budget.mono() - t
    for host, rv in outcome.reverts.items():
        journal.try_write("revert", host=host, verified=rv.verified, restored=rv.restored,
                          deleted=rv.deleted, problems=rv.problems, deadman=rv.deadman)
