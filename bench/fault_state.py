"""The lab seen from outside ctdrill: host state read from the kernel, and what a run
left behind (locks, dead-man switches, ctd_* tables, processes).

Nothing here asks ctdrill: the fault matrix must judge a crashed run by what a user
would find, so it reads /proc/sys, nft, /proc and the state directory itself. The
parsers are pure (tests/unit/test_fault_matrix.py); the readers are thin.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctdrill.lab.manager import LabUp
from ctdrill.lab.topology import GATEWAY_TABLE, run_dir

NF = "/proc/sys/net/netfilter"
LIVE_COUNTER = "nf_conntrack_count"
RUN_ID_VARIABLE = b"CTDRILL_RUN_ID="
TABLE_PREFIX = "ctd_"


@dataclass(frozen=True)
class Host:
    """One host of the lab as the kernel knows it; netns None is the initial namespace
    (the kernel owner)."""

    role: str
    netns: str | None
    inode: int

    def argv(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *cmd] if self.netns else list(cmd)


def lab_hosts(lab: LabUp) -> list[Host]:
    hosts = [Host(h.role, h.netns, os.stat(f"/run/netns/{h.netns}").st_ino)
             for h in lab.plan.hosts]
    return [*hosts, Host("kernel", None, os.stat("/proc/self/ns/net").st_ino)]


# ---------------------------------------------------------------- pure parsers

def sysctl_lines(grep_output: str) -> str:
    """`grep -r . /proc/sys/net/netfilter` without the live entry count, sorted."""
    return "\n".join(sorted(line for line in grep_output.splitlines()
                            if LIVE_COUNTER not in line.split(":", 1)[0]))


def sysctl_values(lines: str) -> dict[str, str]:
    """'path:value' lines -> {path: value}."""
    return dict(line.split(":", 1) for line in lines.splitlines() if ":" in line)


def ctd_tables(listing: str) -> set[str]:
    """'family name' of every ctd_* table in `nft list tables` output."""
    out = set()
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "table" and parts[2].startswith(TABLE_PREFIX):
            out.add(f"{parts[1]} {parts[2]}")
    return out


def lock_inode(name: str) -> int | None:
    """The namespace inode of a lock file 'netns-INODE.json'."""
    stem = name.removesuffix(".json")
    if not name.endswith(".json") or not stem.startswith("netns-"):
        return None
    tail = stem.removeprefix("netns-")
    return int(tail) if tail.isdigit() else None


def lock_run_id(text: str) -> str:
    try:
        holder = json.loads(text)
    except ValueError:
        return "unreadable"
    return str(holder.get("run_id", "unknown")) if isinstance(holder, dict) else "unreadable"


def deadman_key(name: str) -> tuple[str, int] | None:
    """(run id, namespace inode) of a dead-man directory 'RUNID-INODE'."""
    run_id, _, inode = name.rpartition("-")
    return (run_id, int(inode)) if run_id and inode.isdigit() else None


def environ_run_id(environ: bytes) -> str | None:
    """The CTDRILL_RUN_ID a process carries in /proc/PID/environ, if any."""
    for entry in environ.split(b"\0"):
        if entry.startswith(RUN_ID_VARIABLE):
            return entry[len(RUN_ID_VARIABLE):].decode(errors="replace")
    return None


def is_ssh_master(cmdline: bytes) -> bool:
    """An ssh ControlMaster ('ssh: PATH [mux]'): Ansible's shared connection, which
    expires by itself (ControlPersist) and cannot change a host on its own."""
    argv0 = cmdline.split(b"\0", 1)[0]
    return argv0.startswith(b"ssh: ") and b"[mux]" in argv0


def stat_fields(stat: str) -> tuple[str, str, int]:
    """(comm, state, session id) from /proc/PID/stat; comm may hold spaces and ')'."""
    head, _, tail = stat.rpartition(")")
    comm = head.partition("(")[2]
    fields = tail.split()
    return comm, fields[0], int(fields[3])


# ---------------------------------------------------------------- readers

def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


def host_state(hosts: list[Host]) -> dict[str, Any]:
    """Every netfilter sysctl (minus the live count) and the stateless ruleset, per host,
    read straight from the kernel. A failed read is part of the state (never equal)."""
    state: dict[str, Any] = {}
    for h in hosts:
        ruleset = _run(h.argv("nft", "-s", "list", "ruleset"))
        values = _run(h.argv("grep", "-r", ".", NF))
        state[h.role] = {"ruleset": ruleset.stdout, "sysctl": sysctl_lines(values.stdout),
                         "ok": ruleset.returncode == 0 and values.returncode == 0}
    return state


def tables(hosts: list[Host]) -> dict[str, set[str]]:
    return {h.role: ctd_tables(_run(h.argv("nft", "list", "tables")).stdout) for h in hosts}


def baseline_tables(hosts: list[Host]) -> dict[str, set[str]]:
    """The ctd_* tables that belong there before any drill: the lab's own, and whatever
    the machine had already."""
    found = tables(hosts)
    return {role: names | ({f"inet {GATEWAY_TABLE}"} if role == "gw" else set())
            for role, names in found.items()}


@dataclass
class Leftovers:
    """What stands on the lab's hosts after a run: each item a short label."""

    locks: list[str] = field(default_factory=list)
    deadman: list[str] = field(default_factory=list)
    armed: int = 0
    """Dead-man switches that have not fired yet: they may still change a host."""
    tables: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)

    def labels(self) -> list[str]:
        return sorted({*self.locks, *self.deadman, *self.tables, *self.processes})

    @property
    def final(self) -> bool:
        """Nothing left that could still act: no run process, no armed switch."""
        return not self.processes and self.armed == 0


def _state_files(hosts: list[Host], left: Leftovers) -> None:
    roles = {h.inode: h.role for h in hosts}
    for lock in sorted((run_dir() / "locks").glob("*.json")):
        inode = lock_inode(lock.name)
        if inode in roles:
            left.locks.append(f"lock on {roles[inode]}")
    deadman = run_dir() / "deadman"
    for d in sorted(deadman.iterdir()) if deadman.is_dir() else []:
        key = deadman_key(d.name)
        if key is None or key[1] not in roles:
            continue
        fired = (d / "result.json").exists()
        left.armed += not fired
        left.deadman.append(f"dead-man on {roles[key[1]]} "
                            f"({'fired, not verified' if fired else 'armed'})")


def run_processes(run_ids: set[str], session: int | None) -> list[tuple[int, str]]:
    """(pid, name) of live processes carrying one of `run_ids`, or in `session` (the
    spawned orchestrator's, which it leads); lingering ssh connection masters aside."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            comm, state, sid = stat_fields((entry / "stat").read_text())
            if state == "Z" or is_ssh_master((entry / "cmdline").read_bytes()):
                continue
            ours = environ_run_id((entry / "environ").read_bytes()) in run_ids
            if ours or (session is not None and sid == session):
                found.append((int(entry.name), comm))
    return found


def leftovers(hosts: list[Host], baseline: dict[str, set[str]], run_ids: set[str],
              session: int | None) -> Leftovers:
    left = Leftovers()
    _state_files(hosts, left)
    for role, names in tables(hosts).items():
        left.tables += [f"table {t} on {role}" for t in sorted(names - baseline[role])]
    left.processes = [f"process {name}" for _, name in run_processes(run_ids, session)]
    return left


def deadman_results(hosts: list[Host], run_id: str) -> list[str]:
    """What the run's dead-man switches recorded on the hosts after firing."""
    roles = {h.inode: h.role for h in hosts}
    out = []
    for path in sorted((run_dir() / "results").glob(f"{run_id}-netns-*.json")):
        inode = path.stem.rpartition("-")[2]
        try:
            verified = bool(json.loads(path.read_text()).get("verified"))
        except (OSError, ValueError, AttributeError):
            verified = False
        role = roles.get(int(inode), inode) if inode.isdigit() else inode
        out.append(f"dead-man fired on {role} ({'verified' if verified else 'NOT verified'})")
    return out
