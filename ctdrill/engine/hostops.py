"""Host operations of a drill, all through Ansible (playbooks/ and playbooks/library/).

This is the engine's only way to read or change a target, so the same code path runs
against namespaces, SSH hosts and containers.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctdrill.ansible.runner import RunResult, run_playbook
from ctdrill.errors import EnvironmentProblem


def pattern(hosts: list[str]) -> str:
    return ":".join(sorted(hosts))


def _first_failure(result: RunResult) -> str:
    fails = result.failures()
    if not fails:
        return f"ansible run ended {result.status} (rc {result.rc})"
    f = fails[0]
    return f"{f.host}: {f.task}: {f.message or 'failed'}"


def _unreachable(result: RunResult, hosts: list[str]) -> None:
    """Unreachable hosts, and hosts Ansible silently skipped (no inventory match), fail."""
    bad = [r for r in result.failures() if r.unreachable]
    if bad:
        raise EnvironmentProblem(f"target {bad[0].host} is unreachable: {bad[0].message}",
                                 "check the inventory's address, user and key")
    silent = [h for h in hosts if h not in result.hosts]
    if silent:
        raise EnvironmentProblem(f"Ansible returned nothing for {', '.join(silent)} "
                                 f"(run {result.status}, rc {result.rc})",
                                 "check that the inventory still exists and lists them")


@dataclass(frozen=True)
class LockRefusal:
    host: str
    holder: dict[str, Any]

    def describe(self) -> str:
        h = self.holder
        stale = " (STALE: that orchestrator is gone)" if h.get("stale") else ""
        return (f"{self.host} is locked by drill run {h.get('run_id')}{stale}, pid "
                f"{h.get('orchestrator_pid')} on {h.get('orchestrator_host')}, journal "
                f"{h.get('journal')}")


@dataclass(frozen=True)
class HostRevert:
    host: str
    verified: bool
    restored: dict[str, Any]
    deleted: list[str]
    problems: list[str]
    deadman: dict[str, Any]


class HostOps:
    def __init__(self, inventory: Path, run_id: str) -> None:
        self.inventory = inventory
        self.run_id = run_id

    def _snapshots(self, result: RunResult, hosts: list[str]) -> dict[str, dict[str, Any]]:
        snaps = {}
        for host in hosts:
            rs = [r for r in result.hosts.get(host, []) if "snapshot" in r.result]
            if rs:
                snaps[host] = rs[0].result["snapshot"]
        return snaps

    def snapshot(self, hosts: list[str], keys: list[str]) -> dict[str, dict[str, Any]]:
        """Read-only snapshot of each host."""
        result = run_playbook(self.inventory, "snapshot",
                              {"ctdrill_hosts": pattern(hosts), "ctdrill_keys": keys})
        _unreachable(result, hosts)
        if not result.ok:
            raise EnvironmentProblem(f"snapshot failed: {_first_failure(result)}",
                                     "check that nft and python3 exist on the target")
        return self._snapshots(result, hosts)

    def prepare(self, hosts: list[str], keys: list[str], journal: Path,
                ) -> tuple[dict[str, dict[str, Any]], list[LockRefusal]]:
        """Lock every host for this run, then snapshot it."""
        owner = {"orchestrator_host": socket.gethostname(), "orchestrator_pid": os.getpid(),
                 "journal": str(journal)}
        result = run_playbook(self.inventory, "prepare", {
            "ctdrill_hosts": pattern(hosts), "ctdrill_keys": keys,
            "ctdrill_run_id": self.run_id, "ctdrill_owner": owner})
        _unreachable(result, hosts)
        refusals = [LockRefusal(r.host, r.result.get("holder", {}))
                    for r in result.failures() if r.result.get("locked")]
        if not result.ok and not refusals:
            raise EnvironmentProblem(f"prepare failed: {_first_failure(result)}",
                                     "check that nft and python3 exist on the target")
        return self._snapshots(result, hosts), refusals

    def apply(self, per_host: dict[str, dict[str, Any]], ttl_s: float,
              arm: bool = True) -> RunResult:
        """Arm the dead-man switch (first apply only) and apply; the caller journals
        outcomes per change. Later steps apply with arm=False: one timer per host."""
        return run_playbook(self.inventory, "apply", {
            "ctdrill_hosts": pattern(list(per_host)), "ctdrill_run_id": self.run_id,
            "ctdrill_changes": per_host, "ctdrill_ttl_s": ttl_s, "ctdrill_arm": arm})

    def revert(self, per_host: dict[str, dict[str, Any]]) -> dict[str, HostRevert]:
        """Revert to the snapshot, verify, then disarm and unlock (only where verified).

        per_host: host -> {"plan": revert plan, "snapshot": the snapshot to match}.
        """
        reverts = {
            h: {"plan": v["plan"],
                "expected_b64": base64.b64encode(json.dumps(v["snapshot"]).encode()).decode()}
            for h, v in per_host.items()
        }
        result = run_playbook(self.inventory, "revert", {
            "ctdrill_hosts": pattern(list(per_host)), "ctdrill_run_id": self.run_id,
            "ctdrill_reverts": reverts})
        out = {}
        for host in per_host:
            rs = result.hosts.get(host, [])
            res = rs[0].result if rs else {}
            problems = list(res.get("errors", [])) + list(res.get("diffs", []))
            if not rs:
                problems.append("no revert result (host unreachable?)")
            elif not rs[0].ok and not problems:
                problems.append(rs[0].message)
            out[host] = HostRevert(
                host=host, verified=bool(rs and rs[0].ok and res.get("verified")),
                restored=res.get("restored", {}), deleted=res.get("deleted", []),
                problems=problems, deadman=res.get("deadman", {}),
            )
        return out

    def unlock(self, hosts: list[str]) -> None:
        """Release this run's locks where nothing was changed (prepare refused)."""
        run_playbook(self.inventory, "unlock", {"ctdrill_hosts": pattern(hosts),
                                                "ctdrill_run_id": self.run_id})
