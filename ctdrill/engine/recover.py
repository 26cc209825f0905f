"""`ctdrill revert JOURNAL`: put the targets of a run back from its journal alone.

Works after a crash or SIGKILL, before or after the dead-man TTL, and is safe to run
twice: restoring a sysctl to its original value and deleting an absent table are
no-ops, and the verification compares with the journaled snapshot either way.
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctdrill.engine.hostops import HostOps, HostRevert
from ctdrill.engine.journal import Journal, JournalWriteFailed, read_journal
from ctdrill.errors import EnvironmentProblem, InvalidInput
from ctdrill.system.run import pid_alive


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


def recovery_plan(records: list[dict[str, Any]]) -> RecoveryPlan:
    start = records[0]
    snapshots = {r["host"]: r["snapshot"] for r in records if r["type"] == "snapshot"}
    plans = {r["host"]: r["plan"] for r in records if r["type"] == "revert_plan"}
    locked: set[str] = set()
    for r in records:  # `locking` is the intent: any of those hosts may hold our lock
        if r["type"] in ("locking", "locked"):
            locked |= set(r["hosts"])
        elif r["type"] == "unlocked":
            locked -= set(r["hosts"])
    rp = RecoveryPlan(
        run_id=start["run_id"], inventory=Path(start["inventory"]),
        inventory_text=start.get("inventory_text", ""),
        ephemeral_lab=start.get("ephemeral_lab"),
        orchestrator_host=start.get("orchestrator_host", ""),
        orchestrator_pid=int(start.get("orchestrator_pid", -1)),
        ended=any(r["type"] == "end" for r in records),
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
    InvalidInput line, never a traceback; read_journal already refuses empty, binary,
    non-UTF-8 and truncated-before-start files."""
    records = read_journal(path)
    try:
        return recovery_plan(records)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"journal {path} is incomplete or not ctdrill's "
                           f"({type(exc).__name__}: {exc})",
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
