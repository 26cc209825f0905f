"""Host operations of a drill, all through Ansible (playbooks/ and playbooks/library/).

This is the engine's only way to read or change a target, so the same code path runs
against namespaces, SSH hosts and containers.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctdrill.ansible.runner import RunResult, run_playbook
from ctdrill.connect.base import TABLE_FULL_HINT, timed_out
from ctdrill.errors import EnvironmentProblem
from ctdrill.targets.inventory import some_names


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
        hint = (TABLE_FULL_HINT if timed_out(bad[0].message)
                else "check the inventory's address, user and key")
        rest = sorted({r.host for r in bad} - {bad[0].host})
        others = f" (and {len(rest)} more: {some_names(rest, 10)})" if rest else ""
        raise EnvironmentProblem(f"target {bad[0].host} is unreachable: {bad[0].message}"
                                 f"{others}", hint)
    silent = [h for h in hosts if h not in result.hosts]
    if silent:
        raise EnvironmentProblem(f"Ansible returned nothing for {some_names(silent, 10)} "
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
    fenced: dict[str, Any] | None = None  # the run holding the host instead, if any
    not_held: bool = False  # this run held no lock here: nothing of it left to revert


class HostOps:
    """One drill run's operations on its targets. Every play carries the run id, and
    every change on a host is fenced by it there (playbooks/module_utils/ctdrill_host.py).
    `timeout_s` bounds each Ansible run, below the dead-man TTL during a drill."""

    def __init__(self, inventory: Path, run_id: str, timeout_s: int = 300) -> None:
        self.inventory = inventory
        self.run_id = run_id
        self.timeout_s = timeout_s

    def _play(self, name: str, hosts: list[str], payload: dict[str, Any]) -> RunResult:
        return run_playbook(self.inventory, name, hosts, payload, self.run_id, self.timeout_s)

    def _snapshots(self, result: RunResult, hosts: list[str]) -> dict[str, dict[str, Any]]:
        snaps = {}
        for host in hosts:
            rs = [r for r in result.hosts.get(host, []) if "snapshot" in r.result]
            if rs:
                snaps[host] = rs[0].result["snapshot"]
        return snaps

    def snapshot(self, hosts: list[str], keys: list[str]) -> dict[str, dict[str, Any]]:
        """Read-only snapshot of each host."""
        result = self._play("snapshot", hosts, {"common": {"keys": keys}})
        _unreachable(result, hosts)
        if not result.ok:
            raise EnvironmentProblem(f"snapshot failed: {_first_failure(result)}",
                                     "check that nft and python3 exist on the target")
        return self._snapshots(result, hosts)

    def prepare(self, hosts: list[str], keys: list[str], journal: Path, ttl_s: float,
                ) -> tuple[dict[str, dict[str, Any]], list[LockRefusal]]:
        """Lock every host for this run (with a lock-only dead-man switch that frees it
        at the TTL should the run die before applying), then snapshot it."""
        owner = {"orchestrator_host": socket.gethostname(), "orchestrator_pid": os.getpid(),
                 "journal": str(journal)}
        result = self._play("prepare", hosts, {"common": {"keys": keys, "owner": owner,
                                                          "ttl_s": ttl_s}})
        _unreachable(result, hosts)
        refusals = [LockRefusal(r.host, r.result.get("holder", {}))
                    for r in result.failures() if r.result.get("locked")]
        if not result.ok and not refusals:
            raise EnvironmentProblem(f"prepare failed: {_first_failure(result)}",
                                     "check that nft and python3 exist on the target")
        return self._snapshots(result, hosts), refusals

    def apply(self, per_host: dict[str, dict[str, Any]], ttl_s: float,
              expected: dict[str, dict[str, Any]], arm: bool = True,
              check_keys: list[str] | None = None) -> RunResult:
        """Arm the dead-man switch (first apply only) and apply; the caller journals
        outcomes per change. Later steps apply with arm=False: one timer per host.
        `expected` is each host's snapshot: the dead-man verifies against it. With
        `check_keys`, each host is read back in the same task (`applied_snapshots`)."""
        hosts = {h: dict(v, expected=expected[h]) for h, v in per_host.items()}
        common: dict[str, Any] = {"ttl_s": ttl_s, "arm": arm}
        if check_keys is not None:
            common["check_keys"] = check_keys
        return self._play("apply", list(per_host), {"common": common, "hosts": hosts})

    def applied_snapshots(self, result: RunResult) -> dict[str, dict[str, Any]]:
        """The snapshots an apply with `check_keys` read back, by host."""
        return self._snapshots(result, list(result.hosts))

    def revert(self, per_host: dict[str, dict[str, Any]]) -> dict[str, HostRevert]:
        """Revert to the snapshot, verify, then disarm and unlock (only where verified).

        per_host: host -> {"plan": revert plan, "snapshot": the snapshot to match}.
        """
        result = self._play("revert", list(per_host), {"hosts": {
            h: {"plan": v["plan"], "expected": v["snapshot"]} for h, v in per_host.items()}})
        return {host: _host_revert(host, result.hosts.get(host, [])) for host in per_host}

    def unlock(self, hosts: list[str]) -> list[str]:
        """Release this run's locks; returns the hosts where that could not be confirmed."""
        if not hosts:
            return []
        result = self._play("unlock", hosts, {})
        return [h for h in hosts if not (result.hosts.get(h) and all(
            r.ok for r in result.hosts[h]))]


def _host_revert(host: str, rs: list[Any]) -> HostRevert:
    res = rs[0].result if rs else {}
    problems = list(res.get("errors", [])) + list(res.get("diffs", []))
    if not rs:
        problems.append("no revert result (host unreachable?)")
    elif not rs[0].ok and not problems:
        problems.append(rs[0].message)
    return HostRevert(
        host=host, verified=bool(rs and rs[0].ok and res.get("verified")),
        restored=res.get("restored", {}), deleted=res.get("deleted", []),
        problems=problems, deadman=res.get("deadman", {}),
        fenced=res.get("holder") if res.get("fenced") else None,
        not_held=bool(res.get("not_held")))
