"""The fault matrix's bench: the lab, its state before any fault, the drills it runs as
a user would (`python -m ctdrill ...` in a session of its own), and watching a faulted
run until nothing of it can act any more.

The bench cleans up after a trial only once the trial's facts are recorded; what it
had to clean is itself a finding (a human would have had to).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.fault_results import Sample
from bench.fault_state import (
    NF,
    Host,
    Leftovers,
    baseline_tables,
    deadman_key,
    host_state,
    lab_hosts,
    leftovers,
    lock_inode,
    lock_run_id,
    run_processes,
    sysctl_values,
    tables,
)
from ctdrill.lab import manager
from ctdrill.lab.manager import LabUp
from ctdrill.lab.topology import run_dir

LAB = "faults"
POLL_S = 0.25
"""Between host-state reads while watching; each read costs a dozen short commands."""
UDP_KEY = "net.netfilter.nf_conntrack_udp_timeout"
MAX_KEY = "net.netfilter.nf_conntrack_max"
PAUSE = threading.Event()  # never set: wait() is an interruptible pause


# ---------------------------------------------------------------- the drills

def pick(current: str | None, preferred: int, alternative: int) -> int:
    """A value that differs from the host's, so the drill really changes something."""
    return alternative if current is not None and current.strip() == str(preferred) \
        else preferred


def drill_spec(name: str, udp: int, conntrack_max: int, duration_s: float,
               ttl_s: float) -> dict[str, Any]:
    """The matrix's drill: a gateway sysctl and bypass table, a kernel-owner capacity
    change (the kernel host stays local on both transports), a short observation."""
    return {
        "drill": name,
        "targets": {"hosts": "gw:kernel"},
        "changes": [
            {"hosts": "gw", "sysctl": {UDP_KEY: udp},
             "bypass": [{"name": "orders", "protocol": "tcp", "port": 9001}]},
            {"hosts": "kernel", "sysctl": {MAX_KEY: conntrack_max}},
        ],
        "observe": {"hosts": "gw", "hz": 20, "duration_s": duration_s},
        "revert": {"ttl_s": ttl_s},
    }


def unreachable_inventory(inventory: dict[str, Any]) -> dict[str, Any]:
    """The ssh inventory with the gateway's port closed: refused at once, no timeout."""
    out: dict[str, Any] = json.loads(json.dumps(inventory))
    gw = out["all"]["children"]["lab"]["children"]["gateways"]["hosts"]["gw"]
    gw["ansible_port"] = 1
    return out


# ---------------------------------------------------------------- processes

def ctdrill_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "ctdrill", *args]


def spawn(args: list[str], runs: Path, log: Path) -> subprocess.Popen[bytes]:
    """`ctdrill ARGS` in a session of its own, as a shell starts a job, so a signal to
    its process group is a real Ctrl-C; output goes to LOG.out / LOG.err."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CTDRILL_RUNS_DIR=str(runs))
    with open(log.with_suffix(".out"), "wb") as out, open(log.with_suffix(".err"), "wb") as err:
        return subprocess.Popen(ctdrill_argv(*args), stdout=out, stderr=err, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                cwd=log.parent)


def reap(proc: subprocess.Popen[bytes]) -> None:
    """Nothing of a spawned command's process group outlives the trial."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def run_cli(args: list[str], runs: Path, log: Path, timeout: float) -> int | None:
    """Run `ctdrill ARGS` to its end; None when it hung past `timeout` (then killed)."""
    proc = spawn(args, runs, log)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        reap(proc)


def last_line(log: Path) -> str:
    """The last line a command wrote to stderr, and whether it printed a traceback."""
    try:
        text = log.with_suffix(".err").read_text(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    tail = lines[-1][:200] if lines else ""
    return f"TRACEBACK: {tail}" if "Traceback" in text else tail


# ---------------------------------------------------------------- journals

def records(path: Path) -> list[dict[str, Any]]:
    """The journal's complete records; a line being written right now is skipped."""
    out = []
    with contextlib.suppress(OSError):
        for line in path.read_bytes().decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if isinstance(rec, dict):
                    out.append(rec)
    return out


def phase_reached(phase: str, recs: list[dict[str, Any]]) -> bool:
    """The journal record that marks a phase as under way: prepare -> locking, apply ->
    the last intent before the apply play, observe -> samples, revert -> reverting."""
    kinds = [r.get("type") for r in recs]
    if phase == "apply":
        plans = kinds.count("revert_plan")
        intents = sum(r.get("type") == "intent" and not r.get("step") for r in recs)
        return plans > 0 and intents >= plans
    marker = {"prepare": "locking", "observe": "samples", "revert": "reverting"}[phase]
    return marker in kinds


def journals_in(*dirs: Path) -> list[Path]:
    return sorted(j for d in dirs if d.is_dir() for j in d.rglob("journal.jsonl"))


def run_ids_in(*dirs: Path) -> set[str]:
    """Run ids of the journals under `dirs` (a run's directory is named by its id)."""
    return {j.parent.name for j in journals_in(*dirs)}


def wait_for_phase(runs: Path, phase: str, proc: subprocess.Popen[bytes],
                   timeout: float = 120) -> Path | None:
    """The run's journal once `phase` is under way; None if the run ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for journal in journals_in(runs):
            if phase_reached(phase, records(journal)):
                return journal
        PAUSE.wait(0.02)
    return None


# ---------------------------------------------------------------- the lab

@dataclass
class Watched:
    """A faulted run watched until it settled: host-state samples, exit, leftovers."""

    samples: list[Sample] = field(default_factory=list)
    exit_code: int | None = None
    left: Leftovers = field(default_factory=Leftovers)


@dataclass
class Bench:
    ttl_s: float
    work: Path
    lab: LabUp
    kernel_initial: dict[str, str]
    hosts: list[Host] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, set[str]] = field(default_factory=dict)
    specs: dict[str, Path] = field(default_factory=dict)
    run_ids: set[str] = field(default_factory=set)
    finished: dict[str, Path] = field(default_factory=dict)
    """A finished drill's journal per transport, for the journal cells (lazily run)."""

    @classmethod
    def start(cls, ttl_s: float, work: Path) -> Bench:
        kernel = sysctl_values(host_state([Host("kernel", None, 0)])["kernel"]["sysctl"])
        manager.down(LAB)  # a fresh lab: nothing of an interrupted earlier matrix stays
        bench = cls(ttl_s, work, manager.up(LAB, ssh=True), kernel)
        bench.capture()
        left = bench.leftovers(set(), None).labels()
        if left:
            raise SystemExit(f"the lab is not clean before any fault ({', '.join(left)}); "
                             "end the drill that holds it or run 'ctdrill revert' first")
        bench.write_specs()
        return bench

    def capture(self) -> None:
        self.hosts = lab_hosts(self.lab)
        self.baseline = baseline_tables(self.hosts)
        self.before = host_state(self.hosts)

    def write_specs(self) -> None:
        gw = sysctl_values(self.before["gw"]["sysctl"])
        udp = pick(gw.get(f"{NF}/nf_conntrack_udp_timeout"), 13, 17)
        cmax = pick(self.kernel_initial.get(f"{NF}/nf_conntrack_max"), 131072, 196608)
        live_ttl = self.ttl_s + 10
        for name, duration, ttl in [("drill", 4.0, self.ttl_s), ("next", 1.0, self.ttl_s),
                                    ("live", 10.0, live_ttl)]:
            path = self.work / f"{name}.yaml"
            path.write_text(yaml.safe_dump(drill_spec(f"fault-{name}", udp, cmax, duration,
                                                      ttl), sort_keys=False))
            self.specs[name] = path

    def inventory(self, transport: str) -> Path:
        return (self.lab.plan.ssh_inventory_path if transport == "ssh"
                else self.lab.plan.inventory_path)

    def restored(self) -> bool:
        return host_state(self.hosts) == self.before

    def leftovers(self, run_ids: set[str], session: int | None) -> Leftovers:
        return leftovers(self.hosts, self.baseline, run_ids, session)

    def clean(self, run_ids: set[str]) -> bool:
        return self.restored() and not self.leftovers(run_ids, None).labels()

    def watch(self, proc: subprocess.Popen[bytes] | None, t_fault: float, runs: list[Path],
              deadline: float, *, settle: bool = True, into: Watched | None = None,
              extra_ids: frozenset[str] = frozenset()) -> Watched:
        """Sample the host state until the run has exited and nothing of it can still
        act (no process of the run, no armed dead-man), or until `deadline`."""
        w = into or Watched()
        while True:
            equal = self.restored()
            now = time.monotonic()
            w.samples.append((now - t_fault, equal))
            w.exit_code = None if proc is None else proc.poll()
            exited = proc is None or w.exit_code is not None
            w.left = self.leftovers(run_ids_in(*runs) | extra_ids,
                                    None if proc is None else proc.pid)
            if (settle and exited and w.left.final) or now >= deadline:
                return w
            PAUSE.wait(POLL_S)

    def rebuild(self) -> None:
        """What a human would do after a fault that left the lab wedged: put the kernel
        owner's knobs back, drop the bench's runs' locks and switches, rebuild the lab."""
        self.restore_kernel()
        self.forget_kernel_state()
        kernel = next(h for h in self.hosts if h.netns is None)
        for name in sorted(tables([kernel])["kernel"] - self.baseline["kernel"]):
            subprocess.run(["nft", "delete", "table", *name.split()], check=False,
                           capture_output=True)
        manager.down(LAB)
        self.lab = manager.up(LAB, ssh=True)
        self.finished.clear()
        self.capture()

    def restore_kernel(self) -> list[str]:
        """Write back every initial-namespace netfilter knob that differs from the start."""
        now = sysctl_values(host_state([Host("kernel", None, 0)])["kernel"]["sysctl"])
        restored = []
        for path, value in self.kernel_initial.items():
            if now.get(path) != value:
                with contextlib.suppress(OSError):
                    Path(path).write_text(f"{value}\n")
                    restored.append(path)
        return restored

    def forget_kernel_state(self) -> None:
        """The kernel owner's lock and dead-man of the bench's own runs (lab down clears
        those of the namespaces it removes)."""
        inode = os.stat("/proc/self/ns/net").st_ino
        for lock in (run_dir() / "locks").glob("*.json"):
            with contextlib.suppress(OSError):
                if lock_inode(lock.name) == inode and lock_run_id(
                        lock.read_text()) in self.run_ids:
                    lock.unlink()
        for d in (run_dir() / "deadman").glob("*"):
            key = deadman_key(d.name)
            if key is None or key[1] != inode or key[0] not in self.run_ids:
                continue
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((d / "pid").read_text()), signal.SIGKILL)
            shutil.rmtree(d, ignore_errors=True)

    def close(self) -> list[str]:
        """At the end, also an interrupted one: stop the bench's runs, drop what they
        left on the kernel owner, put its knobs back. Returns the knobs restored."""
        self.run_ids |= run_ids_in(self.work)
        self.kill_runs(self.run_ids)
        self.forget_kernel_state()
        return self.restore_kernel()

    def kill_runs(self, run_ids: set[str]) -> None:
        for pid, _ in run_processes(run_ids, None):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
