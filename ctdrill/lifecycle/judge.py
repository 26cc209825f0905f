"""Step 4, judge: the key metrics and one verdict per expectation, journaled.

The judging itself is pure (engine/judge.py); this step runs it over the observation
and records `metrics`, then one `verdict` per expectation (after the apply step's own
"applied exactly the plan" verdict, when there was one).
"""

from __future__ import annotations

from ctdrill.engine.judge import judge as judge_expectation
from ctdrill.engine.judge import key_metrics
from ctdrill.engine.observed import ObservationResult
from ctdrill.engine.perhost import per_host
from ctdrill.journal.records import MetricsRecord
from ctdrill.lifecycle.context import RunContext


def judge(ctx: RunContext, observed: ObservationResult) -> None:
    """Fill the outcome's metrics and verdicts and journal them."""
    outcome, spec = ctx.outcome, ctx.spec
    outcome.metrics = key_metrics(observed, spec)
    ctx.journal.emit(MetricsRecord(metrics=outcome.metrics))
    expectations = per_host(list(spec.expect), lambda p: [t.name for t in ctx.inv.select(p)])
    outcome.verdicts += [judge_expectation(e, observed, spec) for e in expectations]
    for v in outcome.verdicts:
        ctx.journal.write("verdict", **v.to_json())
