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
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctdrill.engine.hostops import HostOps, HostRevert
from ctdrill.engine.journal import Journal
from ctdrill.engine.judge import Verdict, ceiling_breach, judge_metric
from ctdrill.engine.load import LoadContext, build_load
from ctdrill.engine.observer import Observer
from ctdrill.engine.plan import (
    HostPlan,
    plan_host,
    resolve_changes,
    revert_plan,
    select_pools,
    touched_keys,
)
from ctdrill.engine.signals import StopRequested, stop_signals
from ctdrill.errors import CtdrillError, EnvironmentProblem, ExitCode, InvalidInput
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
        }


class ApplyFailed(Exception):
    """A change failed on a host; what was applied anywhere is reverted."""


def _observe(spec: DrillSpec, inv: Inventory, journal: Journal, sig: Any,
             budget_deadline: float, progress: Progress) -> tuple[dict[str, Any], Observer]:
    """Drive the load inside the observation window; guards abort via StopRequested."""
    observe_targets = inv.select(spec.observe.hosts or spec.targets.hosts)
    ceilings = [(c, {t.name for t in inv.select(c.hosts)}) for c in spec.guards.ceilings]
    load = build_load(spec.load, LoadContext(inv))
    observer = Observer(observe_targets, spec.observe.hz, spec.observe.window_s)
    observer.start()
    batches: dict[str, list[dict[str, Any]]] = {t.name: [] for t in observe_targets}
    last_flush = time.monotonic()
    load_started = False
    load_result: dict[str, Any] = {}

    def flush() -> None:
        for host, batch in batches.items():
            if batch:
                journal.write("samples", host=host, samples=batch)
                batches[host] = []

    progress(f"observing {', '.join(t.name for t in observe_targets)} "
             f"for {spec.observe.duration_s:g} s")
    t0 = time.monotonic()
    try:
        while (now := time.monotonic()) - t0 < spec.observe.duration_s:
            sig.checkpoint()
            if time.time() > budget_deadline:
                raise StopRequested("guard: time budget spent (guards.max_duration_s, or "
                                    "the dead-man TTL less 5 s)")
            if not load_started and now - t0 >= load.start_s:
                journal.write("load_start", offset_s=now - t0)
                load.start()
                load_started = True
            for obs in observer.poll(0.1):
                entry: dict[str, Any] = {"sample": obs.sample.to_json()}
                if obs.metrics is not None:
                    entry["metrics"] = obs.metrics.to_json()
                    for ceiling, hosts in ceilings:
                        reason = ceiling_breach(ceiling, hosts, obs.host, obs.metrics)
                        if reason:
                            raise StopRequested(reason)
                batches[obs.host].append(entry)
            if observer.ended >= {t.name for t in observe_targets}:
                raise EnvironmentProblem("telemetry from every observed host ended",
                                         "check the targets; the drill was reverted")
            if time.monotonic() - last_flush >= 1.0:
                flush()
                last_flush = time.monotonic()
    finally:
        if load_started:
            load_result = load.stop()
            journal.write("load_end", result=load_result)
        observer.close()
        flush()
    return load_result, observer


def run_drill(spec: DrillSpec, inventory_path: Path, *, runs_dir: Path | None = None,
              spec_path: str = "", ephemeral_lab: str | None = None,
              progress: Progress = lambda _msg: None) -> DrillOutcome:
    inv = Inventory(inventory_path)
    targets = inv.select(spec.targets.hosts)
    pools = select_pools(spec, [t.name for t in targets])
    changes = resolve_changes(spec, pools, lambda p: [t.name for t in inv.select(p)])
    inv.select(spec.observe.hosts or spec.targets.hosts)  # unknown hosts fail before anything
    for ceiling in spec.guards.ceilings:
        inv.select(ceiling.hosts)
    build_load(spec.load, LoadContext(inv))  # validates the load's hosts up front
    for exp in spec.expect:
        inv.target(exp.host)

    run_id = new_run_id(spec.drill)
    journal = Journal((runs_dir or default_runs_dir()) / run_id / "journal.jsonl")
    journal.write("start", run_id=run_id, drill=spec.drill, spec_path=spec_path,
                  spec=spec.model_dump(mode="json"), inventory=str(inventory_path.resolve()),
                  inventory_text=inventory_path.read_text(), ephemeral_lab=ephemeral_lab,
                  pools={"targets": pools.targets, "canary": pools.canary,
                         "control": pools.control},
                  orchestrator_host=socket.gethostname(), orchestrator_pid=os.getpid())
    outcome = DrillOutcome(run_id, journal.path, ExitCode.OK)
    ops = HostOps(inventory_path, run_id)
    hosts = sorted(changes)
    snapshots: dict[str, dict[str, Any]] = {}
    prepared = False
    started = time.time()
    budget_deadline = started + spec.guards.max_duration_s
    kernel_wide_local = any(
        inv.target(h).transport == "local" and set(hc.sysctl) & KERNEL_WIDE_SYSCTLS
        for h, hc in changes.items())
    with stop_signals() as sig, (knob_lock() if kernel_wide_local else nullcontext()):
        try:
            if hosts:
                progress(f"locking and snapshotting {', '.join(hosts)}")
                t = time.monotonic()
                snapshots, refused = ops.prepare(hosts, touched_keys(changes), journal.path)
                locked = [h for h in hosts if h not in {r.host for r in refused}]
                journal.write("locked", hosts=locked)
                for host, snap in snapshots.items():
                    journal.write("snapshot", host=host, snapshot=snap)
                if refused:
                    ops.unlock(locked)
                    journal.write("unlocked", hosts=locked, why="lock refused elsewhere")
                    raise EnvironmentProblem(
                        "; ".join(r.describe() for r in refused),
                        "wait for that drill to end; if it is stale, run "
                        f"'ctdrill revert {refused[0].holder.get('journal')}'")
                outcome.plans = {h: plan_host(h, changes[h], snapshots[h]) for h in hosts}
                refusals = [r for p in outcome.plans.values() for r in p.refusals]
                if refusals:
                    ops.unlock(locked)
                    journal.write("unlocked", hosts=locked, why="plan refused")
                    raise InvalidInput(refusals[0], "fix the drill spec; nothing was changed")
                for host, hp in outcome.plans.items():
                    journal.write("revert_plan", host=host, plan=revert_plan(hp),
                                  view=hp.to_json())
                prepared = True  # from here on every way out reverts, verifies and unlocks
                outcome.timings["prepare"] = time.monotonic() - t
                sig.checkpoint()
                progress("arming the dead-man switch and applying changes")
                t = time.monotonic()
                per_host = {h: hp.apply_vars(revert_plan(hp))
                            for h, hp in outcome.plans.items()}
                for host, hv in per_host.items():
                    journal.write("intent", host=host, sysctl=hv["sysctl"],
                                  nft=hv["nft"], ttl_s=spec.revert.ttl_s)
                armed_at = time.time()
                # stop (and revert) before any dead-man timer can fire mid-drill
                budget_deadline = min(budget_deadline, armed_at + spec.revert.ttl_s - 5)
                result = ops.apply(per_host, spec.revert.ttl_s)
                for host, rs in result.hosts.items():
                    for r in rs:
                        journal.write("outcome", host=host, task=r.task, ok=r.ok,
                                      changed=r.changed, message=r.message,
                                      name=r.result.get("name"), before=r.result.get("before"),
                                      after=r.result.get("after"))
                outcome.timings["apply"] = time.monotonic() - t
                silent = [h for h in per_host if h not in result.hosts]
                if silent:
                    raise ApplyFailed(f"apply returned nothing for {', '.join(silent)}")
                if not result.ok:
                    bad = result.failures()[0] if result.failures() else None
                    raise ApplyFailed(f"apply failed on {bad.host}: {bad.task}: {bad.message}"
                                      if bad else f"apply ended {result.status}")
            sig.checkpoint()
            outcome.load, observer = _observe(spec, inv, journal, sig, budget_deadline,
                                              progress)
            outcome.verdicts = [judge_metric(e, observer.history) for e in spec.expect]
            for v in outcome.verdicts:
                journal.write("verdict", **v.to_json())
            if not all(v.passed for v in outcome.verdicts):
                outcome.exit_code = ExitCode.EXPECTATIONS_FAILED
        except (StopRequested, ApplyFailed) as exc:
            outcome.reason = str(exc)
            outcome.exit_code = ExitCode.ABORTED
            journal.write("abort", reason=outcome.reason)
        except CtdrillError as exc:
            if not prepared:
                journal.write("refused", reason=exc.one_line())
                journal.close()
                raise
            outcome.reason = exc.one_line()
            outcome.exit_code = ExitCode.ABORTED
            journal.write("abort", reason=outcome.reason)
        except Exception as exc:  # any bug still ends in a verified revert
            outcome.reason = f"internal error: {exc!r}"
            outcome.exit_code = ExitCode.ABORTED
            journal.write("abort", reason=outcome.reason, traceback=traceback.format_exc())
        finally:
            sig.reverting = True
            if prepared:
                progress("reverting and verifying")
                t = time.monotonic()
                outcome.reverts = ops.revert({
                    h: {"plan": revert_plan(hp), "snapshot": snapshots[h]}
                    for h, hp in outcome.plans.items()})
                outcome.timings["revert_verify"] = time.monotonic() - t
                for host, rv in outcome.reverts.items():
                    journal.write("revert", host=host, verified=rv.verified,
                                  restored=rv.restored, deleted=rv.deleted,
                                  problems=rv.problems, deadman=rv.deadman)
                if not outcome.reverted_ok:
                    outcome.exit_code = ExitCode.REVERT_FAILED
        if sig.reason and outcome.exit_code == ExitCode.OK:
            outcome.exit_code = ExitCode.ABORTED
            outcome.reason = sig.reason
    outcome.timings["total"] = time.time() - started
    journal.write("end", exit_code=int(outcome.exit_code), reason=outcome.reason,
                  timings=outcome.timings)
    journal.close()
    return outcome
