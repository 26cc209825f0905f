"""What a run changed and how it was put back (pure): the plan's before -> after per
host and step, and each host's latest revert (a later `ctdrill revert` supersedes)."""

from __future__ import annotations

from collections.abc import Sequence

from ctdrill.journal.payloads import PlanView, SnapshotJson
from ctdrill.journal.records import (
    IntentRecord,
    Record,
    RecoveryEndRecord,
    RevertPlanRecord,
    RevertRecord,
    SnapshotRecord,
)
from ctdrill.report.model import HostChange, RevertRow, SysctlChange


def _base_change(host: str, view: PlanView) -> HostChange | None:
    """A host's base changes from its plan's view (None when it changes nothing)."""
    changes = [SysctlChange(c.key, c.before if c.before is not None else "", c.after)
               for c in view.sysctl if c.changes]
    if not changes and not view.nft_rules:
        return None
    return HostChange(host, view.kernel_owner, None, tuple(changes),
                      view.nft_table or None, view.nft_rules or None)


def _step_change(r: IntentRecord, snap: SnapshotJson,
                 current: dict[tuple[str, str], str]) -> HostChange:
    """A step's intent, each 'before' being the value the previous step (or the
    snapshot) left; `current` is updated to what this step sets."""
    changes = []
    for key, after in r.sysctl.items():
        before = current.get((r.host, key), snap.sysctl.get(key))
        changes.append(SysctlChange(key, before, after))
        current[(r.host, key)] = after
    nft = r.nft
    return HostChange(r.host, snap.kernel_owner, r.step, tuple(changes),
                      f"{nft.family} {nft.table}" if nft else None,
                      (nft.body or None) if nft else None)


def changes(records: Sequence[Record]) -> list[HostChange]:
    """Base changes from the revert_plan views; step changes from the steps' intents."""
    snapshots: dict[str, SnapshotJson] = {}
    out: list[HostChange] = []
    current: dict[tuple[str, str], str] = {}
    for r in records:
        if isinstance(r, SnapshotRecord):
            snapshots[r.host] = r.state()
        elif isinstance(r, RevertPlanRecord) and r.view is not None:
            base = _base_change(r.host, r.view)
            for c in base.sysctl if base is not None else ():
                current[(r.host, c.key)] = c.after
            if base is not None:
                out.append(base)
        elif isinstance(r, IntentRecord) and r.step:
            out.append(_step_change(r, snapshots.get(r.host, SnapshotJson()), current))
    return out


def _revert_row(r: RevertRecord) -> RevertRow:
    dm = r.deadman
    deadman = (f"fired ({dm['fired']})" if dm.get("fired") else
               "disarmed" if dm.get("armed") else "not armed")
    return RevertRow(
        host=r.host, verified=r.verified,
        restored=tuple((k, v[0] if v else "", v[-1] if v else "")
                       for k, v in r.restored.items()),
        deleted=tuple(r.deleted), problems=tuple(r.problems),
        source=r.source or "run", deadman=deadman)


def reverts(records: Sequence[Record]) -> tuple[list[RevertRow], bool]:
    """The latest revert per host, and whether a later recovery verified everything."""
    latest: dict[str, RevertRow] = {}
    recovered = False
    for r in records:
        if isinstance(r, RecoveryEndRecord):
            recovered = r.verified
        elif isinstance(r, RevertRecord):
            latest[r.host] = _revert_row(r)
    return [latest[h] for h in sorted(latest)], recovered


def revert_hosts(records: Sequence[Record]) -> tuple[str, ...]:
    """Hosts with a revert plan: the run may have changed each, so each must be reverted."""
    return tuple(sorted({r.host for r in records
                         if isinstance(r, RevertPlanRecord) and r.host}))
