"""`ctdrill revert JOURNAL`: put the targets of a run back from its journal alone.

Works after a crash or SIGKILL, before or after the dead-man TTL, and is safe to run
twice: restoring a sysctl to its original value and deleting an absent table are
no-ops, and the verification compares with the journaled snapshot either way.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctdrill.engine.hostops import HostOps, HostRevert
from ctdrill.errors import EnvironmentProblem, InvalidInput
from ctdrill.journal.reader import read_records
from ctdrill.journal.records import (
    InvalidRecord,
    LockedRecord,
    LockingRecord,
    Record,
    RecordInvalid,
    RecordModel,
    RevertPlanRecord,
    SnapshotRecord,
    StartRecord,
    UnlockedRecord,
    parse_record,
)
from ctdrill.journal.writer import Journal, JournalWriteFailed
from ctdrill.system.run import pid_alive

NEEDED = frozenset({"start", "locking", "locked", "snapshot", "revert_plan", "unlocked"})
"""The record kinds a recovery plan is made of: one of them that does not validate
refuses the revert (the journal was edited, or is not ctdrill's)."""


@dataclass
class RecoveryPlan:
    """What a journal says must be reverted (pure, from the records)."""

    run_id: str
    inventory: Path
    inventory_text: str
    ephemeral_lab: str | None
    orchestrator_host: str
    orchestrator_pid: int
    ended: bool
    reverts: dict[str, dict[str, Any]] = field(default_factory=dict)
    locked_only: list[str] = field(default_factory=list)


def _typed(records: Sequence[Record | Mapping[str, Any]]) -> list[Record]:
    """Typed records (plain JSON objects parsed leniently); RecordInvalid when a record
    the plan needs does not validate, or the journal does not begin with its start."""
    recs = [r if isinstance(r, RecordModel) else parse_record(dict(r), lenient=True)
            for r in records]
    bad = next((r for r in recs if isinstance(r, InvalidRecord) and r.kind in NEEDED), None)
    if bad is not None:
        raise RecordInvalid(bad.problem)
    if not recs or not isinstance(recs[0], StartRecord):
        raise RecordInvalid("no start record")
    if not recs[0].inventory:
        raise RecordInvalid("'start' record: inventory: missing")
    return recs


def recovery_plan(records: Sequence[Record | Mapping[str, Any]]) -> RecoveryPlan:
    """The hosts to revert (a revert plan and a snapshot each) and the hosts that may
    hold this run's lock without one (`locking` is the intent: any of those hosts)."""
    recs = _typed(records)
    start = recs[0]
    assert isinstance(start, StartRecord)  # _typed checked it
    snapshots = {r.host: r.snapshot for r in recs if isinstance(r, SnapshotRecord)}
    plans = {r.host: r.plan for r in recs if isinstance(r, RevertPlanRecord)}
    locked: set[str] = set()
    for r in recs:
        if isinstance(r, LockingRecord | LockedRecord):
            locked |= set(r.hosts)
        elif isinstance(r, UnlockedRecord):
            locked -= set(r.hosts)
    rp = RecoveryPlan(
        run_id=start.run_id, inventory=Path(start.inventory),
        inventory_text=start.inventory_text, ephemeral_lab=start.ephemeral_lab,
        orchestrator_host=start.orchestrator_host, orchestrator_pid=start.orchestrator_pid,
        ended=any(getattr(r, "kind", None) == "end" for r in recs),
    )
    rp.reverts = {h: {"plan": plans[h], "snapshot": snapshots[h]}
                  for h in plans if h in snapshots}
    rp.locked_only = sorted(locked - set(rp.reverts))
    return rp


def _refuse_if_fenced(reverts: dict[str, HostRevert], rp: RecoveryPlan) -> None:
    """A host another run holds was left alone; say whose it is (exit 5)."""
    fenced = [(h, rv.fenced) for h, rv in reverts.items() if rv.fenced is not None]
    if fenced:
        host, holder = fenced[0]
        raise EnvironmentProblem(
            f"{host} is held by drill run {holder.get('run_id')} (journal "
            f"{holder.get('journal')}), not by {rp.run_id}: nothing was changed there",
            "that run owns the host now; this journal's changes are no longer on it")


def load_recovery_plan(path: Path) -> RecoveryPlan:
    """The recovery plan of a journal file. A journal that reads but lacks what a
    revert needs (a record without its fields: edited, or not ctdrill's) is one
    InvalidInput line, never a traceback; the reader already refuses empty, binary,
    non-UTF-8 and truncated-before-start files."""
    records = read_records(path, lenient=True)
    try:
        return recovery_plan(records)
    except RecordInvalid as exc:
        raise InvalidInput(f"journal {path} is incomplete or not ctdrill's ({exc})",
                           "pass the unedited journal.jsonl of a run") from None


def _open_for_recovery(path: Path) -> Journal | None:
    try:
        return Journal(path)
    except (JournalWriteFailed, OSError):
        return None


def _not_journaled(kind: str, **fields: Any) -> bool:
    return False


def orchestrator_alive(rp: RecoveryPlan) -> bool:
    return (not rp.ended and rp.orchestrator_host == socket.gethostname()
            and rp.orchestrator_pid != os.getpid() and pid_alive(rp.orchestrator_pid))


def revert_from_journal(path: Path, force: bool = False) -> dict[str, HostRevert]:
    rp = load_recovery_plan(path)
    if orchestrator_alive(rp) and not force:
        raise EnvironmentProblem(
            f"run {rp.run_id} is still running (pid {rp.orchestrator_pid})",
            "stop it with Ctrl-C or SIGTERM (it reverts itself), or pass --force")
    inventory = rp.inventory
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if not inventory.exists():
        tmp = tempfile.TemporaryDirectory(prefix="ctd-revert-")
        inventory = Path(tmp.name) / "inventory.yml"
        inventory.write_text(rp.inventory_text)
    try:
        ops = HostOps(inventory, rp.run_id)
        journal = _open_for_recovery(path)  # a full disk must never block a revert
        # keyword records on this path: a field that does not validate is logged and
        # written as given (try_write), never raised between a revert and its record
        note = journal.try_write if journal is not None else _not_journaled
        note("recovery_start", pid=os.getpid(), hosts=sorted(rp.reverts))
        reverts = ops.revert(rp.reverts) if rp.reverts else {}
        if rp.locked_only:
            unconfirmed = ops.unlock(rp.locked_only)
            note("unlocked", hosts=[h for h in rp.locked_only if h not in unconfirmed],
                 why="recovery", unconfirmed=unconfirmed)
        for host, rv in reverts.items():
            note("revert", host=host, verified=rv.verified, restored=rv.restored,
                 deleted=rv.deleted, problems=rv.problems, deadman=rv.deadman,
                 source="ctdrill revert")
        note("recovery_end", verified=all(r.verified for r in reverts.values()))
        if journal is not None:
            journal.close()
        _refuse_if_fenced(reverts, rp)
        return reverts
    finally:
        if tmp is not None:
            tmp.cleanup()
