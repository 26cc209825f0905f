"""Step 2, apply: arm the dead-man switch, apply the base changes, check they are
exactly the plan; and apply one step's changes when the observation reaches it.

Every change is journaled as an `intent` before and an `outcome` after. The time
budget is pulled in here, as the switch is armed: observation stops (and the revert
runs) before any dead-man timer could fire mid-drill. A spec with a `rollout` applies
its base changes in waves, the guards checked between them (lifecycle/waves.py).
"""

from __future__ import annotations

from typing import Any

from ctdrill.ansible.runner import RunResult
from ctdrill.engine.plan import HostPlan, applied_diffs
from ctdrill.engine.verdict import Verdict
from ctdrill.journal import Journal
from ctdrill.journal.records import AppliedCheckRecord, BudgetRecord
from ctdrill.lifecycle.context import RunContext
from ctdrill.lifecycle.policy import ApplyFailed
from ctdrill.lifecycle.waves import roll_out

NO_CHANGES = HostPlan("", (), None, (), False)
"""The plan of a host that only a later step changes: armed now, changed later."""


def _wave(wave: int | None) -> dict[str, int]:
    """The `wave` field of intents and outcomes, written only in a rollout."""
    return {} if wave is None else {"wave": wave}


def journal_outcomes(journal: Journal, result: RunResult, step: str | None,
                     wave: int | None = None) -> None:
    """One record per change: a sysctl task reports each key it wrote in `applied`."""
    for host, rs in result.hosts.items():
        for r in rs:
            for item in r.result.get("applied") or [r.result]:
                ok = bool(item.get("ok", r.ok))
                journal.write("outcome", host=host, task=item.get("task", r.task), ok=ok,
                              changed=bool(item.get("changed", r.changed)),
                              message=item.get("message", "") if not ok else "",
                              name=item.get("name"), before=item.get("before"),
                              after=item.get("after"), step=step, **_wave(wave))


def check_applied(result: RunResult, hosts: list[str]) -> None:
    """Raise ApplyFailed when a host said nothing or a change failed."""
    silent = [h for h in hosts if h not in result.hosts]
    if silent:
        raise ApplyFailed(f"apply returned nothing for {', '.join(silent)}")
    if not result.ok:
        bad = result.failures()[0] if result.failures() else None
        raise ApplyFailed(f"apply failed on {bad.host}: {bad.task}: {bad.message}"
                          if bad else f"apply ended {result.status}")


def _check_exactly_the_plan(ctx: RunContext) -> None:
    """Read back: every base-changed host must differ from its snapshot by the plan and
    nothing else (else abort); passing adds the verdict that says so. The apply task
    read each host back; a host it did not is snapshotted here."""
    prep = ctx.prepared
    if not prep.base:
        return
    after = {h: s for h, s in prep.after_apply.items() if h in prep.base}
    missing = sorted(set(prep.base) - set(after))
    if missing:
        after.update(ctx.ops.snapshot(missing, ctx.resolved.keys()))
    exact = {h: applied_diffs(prep.snapshots[h], after[h], hp) for h, hp in prep.base.items()}
    ctx.journal.emit(AppliedCheckRecord(diffs=exact))
    bad = {h: d for h, d in exact.items() if d}
    if bad:
        host, diffs = next(iter(bad.items()))
        raise ApplyFailed(f"{host} differs from the plan after apply: {diffs[0]}")
    ctx.outcome.verdicts.append(Verdict(
        "applied exactly the plan (nothing else changed)", True, None,
        f"checked {', '.join(sorted(exact))}"))


def apply(ctx: RunContext) -> None:
    """Arm every prepared host's dead-man switch with its whole revert plan and apply
    the base changes, at once or in waves. Nothing to do when the run changes no host."""
    if not ctx.resolved.hosts:
        return
    prep = ctx.prepared
    ctx.sig.checkpoint()
    t = ctx.budget.mono()
    per_host = {h: prep.base.get(h, NO_CHANGES).apply_vars(rp)
                for h, rp in prep.revert_plans().items()}
    if ctx.spec.rollout is None or not prep.base:  # only steps change hosts: one play arms
        ctx.progress("arming the dead-man switch and applying changes")
        _arm_and_apply(ctx, per_host)
    else:
        roll_out(ctx, per_host, lambda hosts, index: _apply_wave(ctx, hosts, index))
    _check_exactly_the_plan(ctx)
    ctx.outcome.timings["apply"] = ctx.budget.mono() - t


def _arm_and_apply(ctx: RunContext, per_host: dict[str, dict[str, Any]],
                   wave: int | None = None) -> None:
    """The first play: intents, the time budget pulled below the TTL, then every host
    armed and its changes applied (one play), outcomes, ApplyFailed on a failure."""
    spec, journal, budget = ctx.spec, ctx.journal, ctx.budget
    for host, hv in per_host.items():
        journal.write("intent", host=host, sysctl=hv["sysctl"], nft=hv["nft"],
                      ttl_s=spec.revert.ttl_s, **_wave(wave))
    armed_at = budget.wall()
    # a revert costs about what lock + snapshot cost, so keep twice that in hand
    revert_budget = max(5.0, 2 * ctx.outcome.timings["prepare"])
    journal.emit(BudgetRecord(revert_budget_s=revert_budget, ansible_timeout_s=ctx.ops.timeout_s))
    budget.keep_before_ttl(armed_at, spec.revert.ttl_s, revert_budget)
    _play_and_check(ctx, per_host, arm=True, step=None, wave=wave)


def _apply_later(ctx: RunContext, per_host: dict[str, dict[str, Any]],
                 step: str | None = None, wave: int | None = None) -> None:
    """A later play under the switches the first one armed (one timer per host): a
    step's changes or a later wave's (read back for the applied check). Intents, the
    play, outcomes, the same checks."""
    step_field = {} if step is None else {"step": step}
    for host, hv in per_host.items():
        ctx.journal.write("intent", host=host, sysctl=hv["sysctl"], nft=hv["nft"],
                          **step_field, **_wave(wave))
    _play_and_check(ctx, per_host, arm=False, step=step, wave=wave)


def _play_and_check(ctx: RunContext, per_host: dict[str, dict[str, Any]], *, arm: bool,
                    step: str | None, wave: int | None) -> None:
    """The apply play, its outcomes, ApplyFailed on a failure. A base play (not a
    step's) also reads each host back, which the applied check compares."""
    base = step is None
    result = ctx.ops.apply(per_host, ctx.spec.revert.ttl_s, ctx.prepared.snapshots, arm=arm,
                           check_keys=ctx.resolved.keys() if base else None)
    journal_outcomes(ctx.journal, result, step, wave)
    check_applied(result, list(per_host))
    if base:
        ctx.prepared.after_apply.update(ctx.ops.applied_snapshots(result))


def _apply_wave(ctx: RunContext, per_host: dict[str, dict[str, Any]], index: int) -> None:
    """One wave's play: the first arms every host (lifecycle/waves.py decides which)."""
    if index == 0:
        _arm_and_apply(ctx, per_host, wave=0)
    else:
        _apply_later(ctx, per_host, wave=index)


def apply_step(ctx: RunContext, index: int) -> None:
    """Apply step `index`'s changes (capacity steps), under the switch armed by
    `apply` (one timer per host): intents, then outcomes, then the same checks."""
    plans = ctx.prepared.steps[index]
    if not plans:
        return
    reverts = ctx.prepared.revert_plans()
    _apply_later(ctx, {h: hp.apply_vars(reverts[h]) for h, hp in plans.items()},
                 step=ctx.spec.steps[index].name)
