"""Step 1, prepare: resolve the spec, open the journal, then lock, snapshot and plan.

`open_run` contacts no host: it resolves every host, change, load and probe the spec
names (bad input fails here, before anything is touched), checks the journal directory
and journals `start`. `prepare` then locks and snapshots every changed host, plans
each change against its snapshot and journals the revert plans; from that moment on
every way out of the run reverts. A failed or refused lock, or a refused plan, unlocks
what this run locked before raising.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from ctdrill.engine.hostops import HostOps
from ctdrill.engine.load import build_load
from ctdrill.engine.load_context import LoadContext
from ctdrill.engine.plan import (
    plan_host,
    refuse_pool_expectations_without_pools,
    refuse_unobserved_guards,
    resolve_changes,
    select_pools,
)
from ctdrill.errors import CtdrillError, EnvironmentProblem, ExitCode, InvalidInput
from ctdrill.journal import Journal, check_journal_dir
from ctdrill.journal.records import (
    LockedRecord,
    LockingRecord,
    SnapshotRecord,
    UnlockedRecord,
    WaitingRecord,
)
from ctdrill.journal.writer import Handler
from ctdrill.lifecycle.context import (
    Budget,
    Progress,
    Resolved,
    RunContext,
    ansible_timeout_s,
    default_runs_dir,
    new_run_id,
)
from ctdrill.lifecycle.outcome import DrillOutcome
from ctdrill.probe.pool import build_probe
from ctdrill.spec.models import KERNEL_WIDE_SYSCTLS, DrillSpec
from ctdrill.system.knobs import knob_lock
from ctdrill.targets.inventory import Inventory

OpsFactory = Callable[[Path, str, int], HostOps]


def resolve(spec: DrillSpec, inv: Inventory, spec_path: str) -> Resolved:
    """Every host the spec names must exist, and every load and probe must build,
    before anything is contacted."""
    targets = inv.select(spec.targets.hosts)
    pools = select_pools(spec, [t.name for t in targets])

    def select(pattern: str) -> list[str]:
        return [t.name for t in inv.select(pattern)]

    base_changes = resolve_changes(spec, pools, select)
    step_changes = [resolve_changes(spec, pools, select, st.changes) for st in spec.steps]
    refuse_unobserved_guards(spec, select)  # also resolves every observed/guarded host
    load_ctx = LoadContext(inv, Path(spec_path).resolve().parent if spec_path else None)
    build_load(spec.load, load_ctx)
    if spec.probe is not None:
        build_probe(spec.probe, inv, spec.observe.duration_s)
    for exp in spec.expect:
        host = getattr(exp, "host", None)
        if host:
            inv.select(host)  # a host, or a group (judged on each of its hosts)
    refuse_pool_expectations_without_pools(spec, pools)
    kernel_wide_local = any(
        inv.target(h).transport == "local" and set(hc.sysctl) & KERNEL_WIDE_SYSCTLS
        for c in [base_changes, *step_changes] for h, hc in c.items())
    return Resolved(pools, base_changes, step_changes, load_ctx, kernel_wide_local)


def open_run(spec: DrillSpec, inventory_path: Path, *, runs_dir: Path | None = None,
             spec_path: str = "", ephemeral_lab: str | None = None,
             progress: Progress = lambda _msg: None,
             ops_factory: OpsFactory | None = None,
             on_event: Handler | None = None) -> RunContext:
    """Resolve, check the journal directory (durable or nothing: refused before any
    host is touched), journal `start`: the run exists from here. `ops_factory` makes
    the run's host operations (HostOps, through Ansible, unless a test fakes them);
    `on_event` is subscribed to the journal before its first record, so it sees all."""
    inv = Inventory(inventory_path)
    resolved = resolve(spec, inv, spec_path)
    run_id = new_run_id(spec.drill)
    runs = runs_dir or default_runs_dir()
    check_journal_dir(runs)
    journal = Journal(runs / run_id / "journal.jsonl")
    if on_event is not None:
        journal.subscribe(on_event)
    pools = resolved.pools
    journal.write("start", run_id=run_id, drill=spec.drill, spec_path=spec_path,
                  spec=spec.model_dump(mode="json"), inventory=str(inventory_path.resolve()),
                  inventory_text=inventory_path.read_text(), ephemeral_lab=ephemeral_lab,
                  pools={"targets": pools.targets, "canary": pools.canary,
                         "control": pools.control},
                  orchestrator_host=socket.gethostname(), orchestrator_pid=os.getpid())
    budget = Budget.start(spec.guards.max_duration_s)
    return RunContext(
        spec=spec, inventory_path=inventory_path, inv=inv, resolved=resolved,
        journal=journal, ops=(ops_factory or HostOps)(inventory_path, run_id,
                                                      ansible_timeout_s(spec.revert.ttl_s)),
        outcome=DrillOutcome(run_id, journal.path, ExitCode.OK), budget=budget,
        progress=progress)


def _unlock_or_say(ctx: RunContext, hosts: list[str], why: str) -> None:
    """Release this run's locks (fenced on each host) and journal what was confirmed."""
    unconfirmed = ctx.ops.unlock(hosts)
    ctx.journal.emit(UnlockedRecord(hosts=[h for h in hosts if h not in unconfirmed],
                                    why=why, unconfirmed=unconfirmed))


def _take_knob_lock(ctx: RunContext, held: ExitStack) -> None:
    """Kernel-wide knobs on a local host are one machine-wide resource: wait for it
    (Ctrl-C while waiting leaves nothing locked)."""
    def waiting(why: str) -> None:
        ctx.journal.emit(WaitingRecord(lock="kernel-knobs", why=why))
        ctx.progress(why)

    held.enter_context(knob_lock(checkpoint=ctx.sig.checkpoint, on_wait=waiting))


def _lock_and_snapshot(ctx: RunContext, hosts: list[str]) -> list[str]:
    """Lock and snapshot every host; returns the hosts locked. Journals `locking`
    first, so a revert from the journal can unlock whatever a crash leaves."""
    journal = ctx.journal
    journal.emit(LockingRecord(hosts=hosts))
    try:
        snapshots, refused = ctx.ops.prepare(hosts, ctx.resolved.keys(), journal.path,
                                             ctx.spec.revert.ttl_s)
    except CtdrillError:
        _unlock_or_say(ctx, hosts, "prepare failed")
        raise
    locked = [h for h in hosts if h not in {r.host for r in refused}]
    journal.emit(LockedRecord(hosts=locked))
    for host, snap in snapshots.items():
        journal.emit(SnapshotRecord(host=host, snapshot=snap))
    if refused:
        _unlock_or_say(ctx, locked, "lock refused elsewhere")
        raise EnvironmentProblem(
            "; ".join(r.describe() for r in refused),
            "wait for that drill to end; if it is stale, run "
            f"'ctdrill revert {refused[0].holder.get('journal')}'")
    ctx.prepared.snapshots = snapshots
    return locked


def _plan(ctx: RunContext, locked: list[str]) -> None:
    """Plan every change against its host's snapshot; a refusal unlocks and fails
    with nothing changed. Journals each host's revert plan."""
    prep, resolved = ctx.prepared, ctx.resolved
    snapshots = prep.snapshots
    prep.base = {h: plan_host(h, hc, snapshots[h]) for h, hc in resolved.base_changes.items()}
    prep.steps = [{h: plan_host(h, hc, snapshots[h]) for h, hc in sc.items()}
                  for sc in resolved.step_changes]
    ctx.outcome.plans = prep.base
    refusals = [r for plans in [prep.base, *prep.steps] for p in plans.values()
                for r in p.refusals]
    if refusals:
        _unlock_or_say(ctx, locked, "plan refused")
        raise InvalidInput(refusals[0], "fix the drill spec; nothing was changed")
    for host, rp in prep.revert_plans().items():
        ctx.journal.write("revert_plan", host=host, plan=rp,
                          view=prep.base[host].to_json() if host in prep.base else None)


def prepare(ctx: RunContext, held: ExitStack) -> None:
    """Take the knob lock if needed, then lock, snapshot and plan every changed host.
    `held` owns the knob lock until the run (and its revert) ends."""
    if ctx.resolved.kernel_wide_local:
        _take_knob_lock(ctx, held)
    ctx.sig.checkpoint()
    hosts = ctx.resolved.hosts
    if not hosts:
        return
    ctx.progress(f"locking and snapshotting {', '.join(hosts)}")
    t = ctx.budget.mono()
    locked = _lock_and_snapshot(ctx, hosts)
    _plan(ctx, locked)
    ctx.prepared.done = True  # from here on every way out reverts, verifies and unlocks
    ctx.outcome.timings["prepare"] = ctx.budget.mono() - t
