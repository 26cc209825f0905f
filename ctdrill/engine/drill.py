"""Run one drill: lock, snapshot, journal, arm, apply, load + observe, judge, ALWAYS revert.

The order is the product: the revert plan and the dead-man switch exist on disk and on
each target before the first change, and the revert runs on every way out of
`run_drill` (normal end, failed expectation, guard, exception, SIGINT, SIGTERM).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctdrill.ansible.runner import RunResult
from ctdrill.engine.expect import judge, key_metrics
from ctdrill.engine.hostops import HostOps, HostRevert
from ctdrill.engine.journal import Journal, check_journal_dir
from ctdrill.engine.judge import Verdict
from ctdrill.engine.load import LoadContext, build_load
from ctdrill.engine.observation import observe
from ctdrill.engine.plan import (
    HostPlan,
    applied_diffs,
    merged_revert_plan,
    plan_host,
    refuse_unobserved_guards,
    resolve_changes,
    select_pools,
    touched_keys,
)
from ctdrill.engine.signals import StopRequested, stop_signals
from ctdrill.errors import CtdrillError, EnvironmentProblem, ExitCode, InvalidInput
from ctdrill.probe.phase import ProbePhase
from ctdrill.spec.models import KERNEL_WIDE_SYSCTLS, DrillSpec
from ctdrill.system.knobs import knob_lock
from ctdrill.targets.inventory import Inventory

Progress = Callable[[str], None]


def default_runs_dir() -> Path:
    return Path(os.environ.get("CTDRILL_RUNS_DIR", "runs"))


def new_run_id(drill: str) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{drill}-{secrets.token_hex(3)}"


@dataclass
class DrillOutcome:
    run_id: str
    journal: Path
    exit_code: ExitCode
    reason: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    reverts: dict[str, HostRevert] = field(default_factory=dict)
    plans: dict[str, HostPlan] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    transitions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    final_regime: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)

    @property
    def reverted_ok(self) -> bool:
        return all(r.verified for r in self.reverts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "journal": str(self.journal),
            "exit_code": int(self.exit_code), "reason": self.reason,
            "expectations": [v.to_json() for v in self.verdicts],
            "revert": {h: {"verified": r.verified, "restored": r.restored,
                           "deleted": r.deleted, "problems": r.problems}
                       for h, r in self.reverts.items()},
            "changes": {h: p.to_json() for h, p in self.plans.items()},
            "load": self.load, "timings_s": self.timings,
            "transitions": self.transitions, "final_regime": self.final_regime,
            "metrics": self.metrics,
        }


class ApplyFailed(Exception):
    """A change failed on a host; what was applied anywhere is reverted."""


def _journal_outcomes(journal: Journal, result: RunResult, step: str | None) -> None:
    """One record per change: a sysctl task reports each key it wrote in `applied`."""
    for host, rs in result.hosts.items():
        for r in rs:
            for item in r.result.get("applied") or [r.result]:
                ok = bool(item.get("ok", r.ok))
                journal.write("outcome", host=host, task=r.task, ok=ok,
                              changed=bool(item.get("changed", r.changed)),
                              message=item.get("message", "") if not ok else "",
                              name=item.get("name"), before=item.get("before"),
                              after=item.get("after"), step=step)


def ansible_timeout_s(ttl_s: float) -> int:
    """Each Ansible run ends well before the dead-man TTL: a hung apply must never
    outlive the switch that would revert it."""
    return int(min(300.0, max(10.0, ttl_s / 2)))


def _unlock_or_say(ops: HostOps, journal: Journal, hosts: list[str], why: str) -> None:
    """Release this run's locks (fenced on each host) and journal what was confirmed."""
    unconfirmed = ops.unlock(hosts)
    journal.write("unlocked", hosts=[h for h in hosts if h not in unconfirmed], why=why,
                  unconfirmed=unconfirmed)


def _check_applied(result: RunResult, hosts: list[str]) -> None:
    silent = [h for h in hosts if h not in result.hosts]
    if silent:
        raise ApplyFailed(f"apply returned nothing for {', '.join(silent)}")
    if not result.ok:
        bad = result.failures()[0] if result.failures() else None
        raise ApplyFailed(f"apply failed on {bad.host}: {bad.task}: {bad.message}"
                          if bad else f"apply ended {result.status}")


@dataclass
class _Prepared:
    """Everything known after lock + snapshot + plan: what the revert needs."""

    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    base: dict[str, HostPlan] = field(default_factory=dict)
    steps: list[dict[str, HostPlan]] = field(default_factory=list)

    def revert_plans(self) -> dict[str, dict[str, Any]]:
        hosts = sorted(self.snapshots)
        return {h: merged_revert_plan([p for p in [self.base.get(h)]
                                       + [st.get(h) for st in self.steps] if p is not None])
                for h in hosts}


def run_drill(spec: DrillSpec, inventory_path: Path, *, runs_dir: Path | None = None,
              spec_path: str = "", ephemeral_lab: str | None = None,
              progress: Progress = lambda _msg: None) -> DrillOutcome:
    inv = Inventory(inventory_path)
    targets = inv.select(spec.targets.hosts)
    pools = select_pools(spec, [t.name for t in targets])

    def select(pattern: str) -> list[str]:
        return [t.name for t in inv.select(pattern)]

    base_changes = resolve_changes(spec, pools, select)
    step_changes = [resolve_changes(spec, pools, select, st.changes) for st in spec.steps]
    # every host the spec names must exist before anything is contacted
    refuse_unobserved_guards(spec, select)  # also resolves every observed/guarded host
    load_ctx = LoadContext(inv, Path(spec_path).resolve().parent if spec_path else None)
    build_load(spec.load, load_ctx)
    if spec.probe is not None:
        ProbePhase(spec.probe, inv, spec.observe.duration_s)
    for exp in spec.expect:
        host = getattr(exp, "host", None)
        if host:
            inv.target(host)

    run_id = new_run_id(spec.drill)
    runs = runs_dir or default_runs_dir()
    check_journal_dir(runs)  # durable or nothing: refuse before any host is touched
    journal = Journal(runs / run_id / "journal.jsonl")
    journal.write("start", run_id=run_id, drill=spec.drill, spec_path=spec_path,
                  spec=spec.model_dump(mode="json"), inventory=str(inventory_path.resolve()),
                  inventory_text=inventory_path.read_text(), ephemeral_lab=ephemeral_lab,
                  pools={"targets": pools.targets, "canary": pools.canary,
                         "control": pools.control},
                  orchestrator_host=socket.gethostname(), orchestrator_pid=os.getpid())
    outcome = DrillOutcome(run_id, journal.path, ExitCode.OK)
    ops = HostOps(inventory_path, run_id, ansible_timeout_s(spec.revert.ttl_s))
    hosts = sorted(set(base_changes) | {h for sc in step_changes for h in sc})
    prep = _Prepared()
    prepared = False
    started = time.time()
    budget_deadline = started + spec.guards.max_duration_s
    kernel_wide_local = any(
        inv.target(h).transport == "local" and set(hc.sysctl) & KERNEL_WIDE_SYSCTLS
        for c in [base_changes, *step_changes] for h, hc in c.items())

    def apply_step(index: int) -> None:
        plans = prep.steps[index]
        if not plans:
            return
        name = spec.steps[index].name
        reverts = prep.revert_plans()
        per_host = {h: hp.apply_vars(reverts[h]) for h, hp in plans.items()}
        for host, hv in per_host.items():
            journal.write("intent", host=host, sysctl=hv["sysctl"], nft=hv["nft"], step=name)
        result = ops.apply(per_host, spec.revert.ttl_s, prep.snapshots, arm=False)
        _journal_outcomes(journal, result, name)
        _check_applied(result, list(per_host))

    with stop_signals() as sig, ExitStack() as held:
        try:
            if kernel_wide_local:  # Ctrl-C while waiting for it leaves nothing locked
                def waiting(why: str) -> None:
                    journal.write("waiting", lock="kernel-knobs", why=why)
                    progress(why)

                held.enter_context(knob_lock(checkpoint=sig.checkpoint, on_wait=waiting))
            sig.checkpoint()
            if hosts:
                progress(f"locking and snapshotting {', '.join(hosts)}")
                t = time.monotonic()
                journal.write("locking", hosts=hosts)  # intent first: revert can unlock
                try:
                    snapshots, refused = ops.prepare(
                        hosts, touched_keys(base_changes, *step_changes), journal.path,
                        spec.revert.ttl_s)
                except CtdrillError:
                    _unlock_or_say(ops, journal, hosts, "prepare failed")
                    raise
                locked = [h for h in hosts if h not in {r.host for r in refused}]
                journal.write("locked", hosts=locked)
                for host, snap in snapshots.items():
                    journal.write("snapshot", host=host, snapshot=snap)
                if refused:
                    _unlock_or_say(ops, journal, locked, "lock refused elsewhere")
                    raise EnvironmentProblem(
                        "; ".join(r.describe() for r in refused),
                        "wait for that drill to end; if it is stale, run "
                        f"'ctdrill revert {refused[0].holder.get('journal')}'")
                prep.snapshots = snapshots
                prep.base = {h: plan_host(h, hc, snapshots[h]) for h, hc in base_changes.items()}
                prep.steps = [{h: plan_host(h, hc, snapshots[h]) for h, hc in sc.items()}
                              for sc in step_changes]
                outcome.plans = prep.base
                refusals = [r for plans in [prep.base, *prep.steps] for p in plans.values()
                            for r in p.refusals]
                if refusals:
                    _unlock_or_say(ops, journal, locked, "plan refused")
                    raise InvalidInput(refusals[0], "fix the drill spec; nothing was changed")
                for host, rp in prep.revert_plans().items():
                    journal.write("revert_plan", host=host, plan=rp,
                                  view=prep.base[host].to_json() if host in prep.base else None)
                prepared = True  # from here on every way out reverts, verifies and unlocks
                outcome.timings["prepare"] = time.monotonic() - t
                sig.checkpoint()
                progress("arming the dead-man switch and applying changes")
                t = time.monotonic()
                empty = HostPlan("", (), None, (), False)
                per_host = {h: prep.base.get(h, empty).apply_vars(rp)
                            for h, rp in prep.revert_plans().items()}
                for host, hv in per_host.items():
                    journal.write("intent", host=host, sysctl=hv["sysctl"], nft=hv["nft"],
                                  ttl_s=spec.revert.ttl_s)
                armed_at = time.time()
                # stop (and revert) before any dead-man timer can fire mid-drill; a revert
                # costs about what lock + snapshot cost, so keep twice that in hand
                revert_budget = max(5.0, 2 * outcome.timings["prepare"])
                journal.write("budget", revert_budget_s=revert_budget,
                              ansible_timeout_s=ops.timeout_s)
                budget_deadline = min(budget_deadline,
                                      armed_at + spec.revert.ttl_s - revert_budget)
                result = ops.apply(per_host, spec.revert.ttl_s, prep.snapshots)
                _journal_outcomes(journal, result, None)
                _check_applied(result, list(per_host))
                if prep.base:
                    after = ops.snapshot(sorted(prep.base),
                                         touched_keys(base_changes, *step_changes))
                    exact = {h: applied_diffs(prep.snapshots[h], after[h], hp)
                             for h, hp in prep.base.items()}
                    journal.write("applied_check", diffs=exact)
                    bad = {h: d for h, d in exact.items() if d}
                    if bad:
                        host, diffs = next(iter(bad.items()))
                        raise ApplyFailed(f"{host} differs from the plan after apply: "
                                          f"{diffs[0]}")
                    outcome.verdicts.append(Verdict(
                        "applied exactly the plan (nothing else changed)", True, None,
                        f"checked {', '.join(sorted(exact))}"))
                outcome.timings["apply"] = time.monotonic() - t
            sig.checkpoint()
            observed = observe(spec, inv, journal, sig, budget_deadline, progress, apply_step,
                               load_ctx)
            outcome.load = {"phases": observed.loads}
            outcome.transitions = {h: [tr.to_json() for tr in trs]
                                   for h, trs in observed.transitions.items()}
            outcome.final_regime = observed.final_regime
            outcome.metrics = key_metrics(observed, spec)
            journal.write("metrics", metrics=outcome.metrics)
            outcome.verdicts += [judge(e, observed, spec) for e in spec.expect]
            for v in outcome.verdicts:
                journal.write("verdict", **v.to_json())
            if not all(v.passed for v in outcome.verdicts):
                outcome.exit_code = ExitCode.EXPECTATIONS_FAILED
        except (StopRequested, ApplyFailed) as exc:
            outcome.reason = sig.reason or str(exc)  # the operator's Ctrl-C wins
            outcome.exit_code = ExitCode.ABORTED
            journal.try_write("abort", reason=outcome.reason)
        except CtdrillError as exc:
            if not prepared:
                journal.try_write("refused", reason=exc.one_line())
                journal.close()
                raise
            outcome.reason = sig.reason or exc.one_line()
            outcome.exit_code = ExitCode.ABORTED
            journal.try_write("abort", reason=outcome.reason)
        except Exception as exc:  # any bug still ends in a verified revert
            outcome.reason = f"internal error: {exc!r}"
            outcome.exit_code = ExitCode.ABORTED
            journal.try_write("abort", reason=outcome.reason,
                              traceback=traceback.format_exc())
        finally:
            sig.reverting = True
            if prepared:
                progress("reverting and verifying")
                journal.try_write("reverting", hosts=sorted(prep.revert_plans()))
                t = time.monotonic()
                outcome.reverts = ops.revert({
                    h: {"plan": rp, "snapshot": prep.snapshots[h]}
                    for h, rp in prep.revert_plans().items()})
                outcome.timings["revert_verify"] = time.monotonic() - t
                for host, rv in outcome.reverts.items():
                    journal.try_write("revert", host=host, verified=rv.verified,
                                  restored=rv.restored, deleted=rv.deleted,
                                  problems=rv.problems, deadman=rv.deadman)
                if not outcome.reverted_ok:
                    outcome.exit_code = ExitCode.REVERT_FAILED
        if sig.reason and outcome.exit_code == ExitCode.OK:
            outcome.exit_code = ExitCode.ABORTED
            outcome.reason = sig.reason
    if prepared and journal.failed is not None:  # reverted, but the record is not whole
        outcome.exit_code = ExitCode.REVERT_FAILED
        outcome.reason = (f"{journal.failed.one_line()} ({journal.dropped} records not "
                          "journaled; the hosts were reverted)")
    outcome.timings["total"] = time.time() - started
    journal.try_write("end", exit_code=int(outcome.exit_code), reason=outcome.reason,
                      timings=outcome.timings)
    journal.close()
    return outcome
