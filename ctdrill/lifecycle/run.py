"""One drill run as the composition of its steps:

    open_run -> prepare -> apply -> observe -> judge -> (always) revert -> report

The order is the product: the revert plan and the dead-man switch exist on disk and on
each target before the first change, and `revert` runs on every way out once prepare
has journaled the revert plans (normal end, failed expectation, guard, exception,
SIGINT, SIGTERM). Signals become a stop request checked between steps and in every
wait (engine/signals.py). How each way out maps to an exit code is policy.py's.
"""

from __future__ import annotations

import traceback
from contextlib import ExitStack
from pathlib import Path

from ctdrill.connect.warm import warm_connections
from ctdrill.engine.signals import stop_signals
from ctdrill.journal.writer import Handler
from ctdrill.lifecycle import policy
from ctdrill.lifecycle.apply import apply
from ctdrill.lifecycle.context import Progress, RunContext
from ctdrill.lifecycle.judge import judge
from ctdrill.lifecycle.observe import observe, observed_targets
from ctdrill.lifecycle.outcome import DrillOutcome
from ctdrill.lifecycle.prepare import open_run, prepare
from ctdrill.lifecycle.report import report
from ctdrill.lifecycle.revert import revert
from ctdrill.spec.models import DrillSpec


def run_drill(spec: DrillSpec, inventory_path: Path, *, runs_dir: Path | None = None,
              spec_path: str = "", ephemeral_lab: str | None = None,
              progress: Progress = lambda _msg: None,
              on_event: Handler | None = None) -> DrillOutcome:
    """Run one drill on the inventory's hosts and return its outcome. Bad input, a
    journal directory that cannot be written, or a refusal before prepare raises a
    CtdrillError (nothing was changed); every later failure is an exit code.
    `on_event` receives every journal record of the run, typed, as it is written."""
    ctx = open_run(spec, inventory_path, runs_dir=runs_dir, spec_path=spec_path,
                   ephemeral_lab=ephemeral_lab, progress=progress, on_event=on_event)
    return execute(ctx)


def execute(ctx: RunContext) -> DrillOutcome:
    """The steps in order under the stop signals; revert in `finally`."""
    abort: policy.Abort | None = None
    with stop_signals(ctx.sig), ExitStack() as held:
        try:
            prepare(ctx, held)
            ctx.warm = held.enter_context(warm_connections(observed_targets(ctx.spec, ctx.inv)))
            apply(ctx)
            ctx.sig.checkpoint()
            judge(ctx, observe(ctx))
        except Exception as exc:  # any way out, a bug included, still ends in the revert
            abort = policy.on_error(exc, stop_reason=ctx.sig.reason,
                                    prepared=ctx.prepared.done)
            _journal_abort(ctx, abort)
            if abort.refused:
                raise
        finally:
            revert(ctx)
    failed = policy.journal_failure(ctx.journal.failed, ctx.journal.dropped,
                                    prepared=ctx.prepared.done)
    ctx.outcome.exit_code, ctx.outcome.reason = policy.exit_code(
        abort=abort, verdicts=ctx.outcome.verdicts, reverted_ok=ctx.outcome.reverted_ok,
        stop_reason=ctx.sig.reason, journal_failed=failed)
    return report(ctx)


def _journal_abort(ctx: RunContext, abort: policy.Abort) -> None:
    """Journal why the run stops (called while the exception is being handled, so a
    bug's traceback is at hand). A refusal closes the journal: no `end` follows."""
    if abort.refused:
        ctx.journal.try_write("refused", reason=abort.reason)
        ctx.journal.close()
    elif abort.bug:
        ctx.journal.try_write("abort", reason=abort.reason, traceback=traceback.format_exc())
    else:
        ctx.journal.try_write("abort", reason=abort.reason)
