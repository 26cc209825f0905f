"""Fakes for running the drill lifecycle without root: host ops over an in-memory host,
and an observation window that follows a script instead of reading telemetry.

The fakes keep the contract of the real ones (engine/hostops.py, lifecycle/observe.py):
snapshots in the host module's shape, one RunResult per play, a revert that restores
the snapshot and says whether it verified.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctdrill.ansible.runner import RunResult, TaskResult
from ctdrill.engine.hostops import HostRevert, LockRefusal
from ctdrill.engine.observed import ObservationResult
from ctdrill.engine.signals import StopSignals
from ctdrill.journal import Journal
from ctdrill.spec.models import DrillSpec

UDP = "net.netfilter.nf_conntrack_udp_timeout"
UDP_STREAM = "net.netfilter.nf_conntrack_udp_timeout_stream"
MAX = "net.netfilter.nf_conntrack_max"

INVENTORY = """\
all:
  hosts:
    gw: {ansible_connection: local, ctdrill_netns: ctdt-gw}
    venue: {ansible_connection: local, ctdrill_netns: ctdt-venue}
"""


def write_inventory(tmp: Path) -> Path:
    path = tmp / "inventory.yml"
    path.write_text(INVENTORY)
    return path


def drill(**kw: Any) -> DrillSpec:
    """A drill on gw: one timeout change, no load, no expectation unless given."""
    base: dict[str, Any] = {"drill": "fake", "targets": {"hosts": "gw"},
                            "changes": [{"sysctl": {UDP: 10}}],
                            "observe": {"duration_s": 1}, "revert": {"ttl_s": 60}}
    base.update(kw)
    return DrillSpec.model_validate(base)


@dataclass
class Script:
    """What the fake hosts and the fake observation do, and what happened to them."""

    prepare_raises: Exception | None = None
    refuse_lock: bool = False
    apply_fails: bool = False
    drift: bool = False
    """After apply, a key the plan did not touch has changed on the host."""
    revert_unverified: bool = False
    during_observe: Callable[[Journal, StopSignals], None] | None = None
    during_revert: Callable[[], None] | None = None
    deadline: float | None = None
    """The time budget the observation was given."""
    calls: list[str] = field(default_factory=list)
    hosts: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each host's live sysctls."""

    def host(self, name: str) -> dict[str, str]:
        return self.hosts.setdefault(name, {UDP: "30", UDP_STREAM: "120", MAX: "262144"})


def _snap(values: dict[str, str]) -> dict[str, Any]:
    return {"sysctl": dict(values), "kernel_owner": False, "netns_inode": 42, "tables": [],
            "writable": sorted(values), "ruleset": ""}


def _ok(host: str, task: str, **result: Any) -> TaskResult:
    return TaskResult(host, task, True, True, result)


class FakeOps:
    """HostOps over in-memory hosts (same methods, same results)."""

    def __init__(self, script: Script, inventory: Path, run_id: str, timeout_s: int) -> None:
        self.script, self.inventory, self.run_id, self.timeout_s = (
            script, inventory, run_id, timeout_s)

    def prepare(self, hosts: list[str], keys: list[str], journal: Path, ttl_s: float,
                ) -> tuple[dict[str, dict[str, Any]], list[LockRefusal]]:
        self.script.calls.append("prepare")
        if self.script.prepare_raises is not None:
            raise self.script.prepare_raises
        refused = [LockRefusal(hosts[-1], {"run_id": "other", "journal": "/j/other"})
                   ] if self.script.refuse_lock else []
        return {h: _snap(self.script.host(h)) for h in hosts}, refused

    def snapshot(self, hosts: list[str], keys: list[str]) -> dict[str, dict[str, Any]]:
        self.script.calls.append("snapshot")
        return {h: _snap(self.script.host(h)) for h in hosts}

    def apply(self, per_host: dict[str, dict[str, Any]], ttl_s: float,
              expected: dict[str, dict[str, Any]], arm: bool = True,
              check_keys: list[str] | None = None) -> RunResult:
        self.script.calls.append("apply" if arm else "apply_step")
        results = {}
        for host, hv in per_host.items():
            if self.script.apply_fails:
                results[host] = [TaskResult(host, "sysctl", False, False,
                                            {"msg": "boom"}, "boom")]
                continue
            live = self.script.host(host)
            applied = [{"name": k, "before": live.get(k), "after": v, "ok": True,
                        "changed": live.get(k) != v} for k, v in hv["sysctl"].items()]
            live.update(hv["sysctl"])
            if self.script.drift:
                live[MAX] = "1"
            back = {} if check_keys is None else {"snapshot": _snap(live)}
            results[host] = [_ok(host, "arm" if arm else "step"),
                             _ok(host, "sysctl", applied=applied, **back)]
        return RunResult("successful" if not self.script.apply_fails else "failed",
                         0 if not self.script.apply_fails else 2, results)

    def applied_snapshots(self, result: RunResult) -> dict[str, dict[str, Any]]:
        return {h: r.result["snapshot"] for h, rs in result.hosts.items() for r in rs
                if "snapshot" in r.result}

    def revert(self, per_host: dict[str, dict[str, Any]]) -> dict[str, HostRevert]:
        self.script.calls.append("revert")
        if self.script.during_revert is not None:
            self.script.during_revert()
        out = {}
        for host, v in per_host.items():
            live = self.script.host(host)
            restored = {k: [live[k], original] for k, original in v["plan"]["sysctl"].items()}
            live.update(v["plan"]["sysctl"])
            ok = not self.script.revert_unverified
            out[host] = HostRevert(host, ok, restored, [], [] if ok else ["sysctl differs"],
                                   {"armed": True, "fired": False})
        return out

    def unlock(self, hosts: list[str]) -> list[str]:
        self.script.calls.append("unlock")
        return []


def interrupt(journal: Journal, sig: StopSignals) -> None:
    """The operator's Ctrl-C arriving mid-observation, seen at the next checkpoint."""
    sig.handle(signal.SIGINT, None)
    sig.checkpoint()


def window_class(script: Script) -> type:
    """An observation window (lifecycle/observe.Window's constructor and `run`) that
    applies each step at once, then does what the script says."""

    class FakeWindow:
        def __init__(self, spec: DrillSpec, inv: object, journal: Journal,
                     sig: StopSignals, progress: object, apply_step: Callable[[int], None],
                     load_ctx: object, pools: object = None, warm: object = None) -> None:
            self.spec, self.journal, self.sig, self.apply_step = spec, journal, sig, apply_step

        def run(self, budget_deadline: float) -> ObservationResult:
            script.calls.append("observe")
            script.deadline = budget_deadline
            for i, st in enumerate(self.spec.steps):
                self.journal.write("step_start", step=st.name, index=i)
                self.apply_step(i)
            if script.during_observe is not None:
                script.during_observe(self.journal, self.sig)
            return ObservationResult(started=0.0, final_regime={"gw": "normal"})

    return FakeWindow
