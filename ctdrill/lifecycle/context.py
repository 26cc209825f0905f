"""The run context: everything one drill run's steps share, in one explicit object.

Each lifecycle step (prepare, apply, observe, judge, revert, report) takes a
`RunContext` and reads or fills its parts; nothing is passed through closures, so a
step can be read (and tested) on its own.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctdrill.connect.warm import WarmConnections
from ctdrill.engine.hostops import HostOps
from ctdrill.engine.load_context import LoadContext
from ctdrill.engine.plan import HostChanges, HostPlan, Pools, merged_revert_plan, touched_keys
from ctdrill.engine.signals import StopSignals
from ctdrill.journal import Journal
from ctdrill.lifecycle.outcome import DrillOutcome
from ctdrill.spec.models import DrillSpec
from ctdrill.targets.inventory import Inventory

Progress = Callable[[str], None]
Clock = Callable[[], float]


def default_runs_dir() -> Path:
    """Where run journals go: $CTDRILL_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("CTDRILL_RUNS_DIR", "runs"))


def new_run_id(drill: str) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{drill}-{secrets.token_hex(3)}"


def ansible_timeout_s(ttl_s: float) -> int:
    """Each Ansible run ends well before the dead-man TTL: a hung apply must never
    outlive the switch that would revert it."""
    return int(min(300.0, max(10.0, ttl_s / 2)))


@dataclass(frozen=True)
class Resolved:
    """The spec resolved against the inventory before any host is contacted."""

    pools: Pools
    base_changes: dict[str, HostChanges]
    step_changes: list[dict[str, HostChanges]]
    load_ctx: LoadContext
    kernel_wide_local: bool
    """A change to a kernel-wide sysctl on a local host: the run takes the knob lock."""

    @property
    def hosts(self) -> list[str]:
        """Every host the run changes (base changes and every step's)."""
        return sorted(set(self.base_changes) | {h for sc in self.step_changes for h in sc})

    def keys(self) -> list[str]:
        """Every sysctl key the run may touch: what each snapshot must read."""
        return touched_keys(self.base_changes, *self.step_changes)


@dataclass
class Prepared:
    """Everything known after lock + snapshot + plan: what the revert needs."""

    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    base: dict[str, HostPlan] = field(default_factory=dict)
    steps: list[dict[str, HostPlan]] = field(default_factory=list)
    after_apply: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each host as the base apply read it back (the applied check compares it)."""
    done: bool = False
    """Set once the revert plans are journaled: from then on every way out of the run
    reverts, verifies and unlocks."""

    def revert_plans(self) -> dict[str, dict[str, Any]]:
        hosts = sorted(self.snapshots)
        return {h: merged_revert_plan([p for p in [self.base.get(h)]
                                       + [st.get(h) for st in self.steps] if p is not None])
                for h in hosts}


@dataclass
class Budget:
    """The run's clocks and its time budget: observation stops at `deadline` (wall
    clock), which apply pulls in below the dead-man TTL less the revert's own budget."""

    started: float
    deadline: float
    wall: Clock = time.time
    mono: Clock = time.monotonic

    @classmethod
    def start(cls, max_duration_s: float, wall: Clock = time.time,
              mono: Clock = time.monotonic) -> Budget:
        """The budget of a run starting now: guards.max_duration_s from here."""
        started = wall()
        return cls(started, started + max_duration_s, wall, mono)

    def keep_before_ttl(self, armed_at: float, ttl_s: float, revert_budget_s: float) -> None:
        self.deadline = min(self.deadline, armed_at + ttl_s - revert_budget_s)


@dataclass
class RunContext:
    """One drill run: its inputs, its record, its access to hosts and its state."""

    spec: DrillSpec
    inventory_path: Path
    inv: Inventory
    resolved: Resolved
    journal: Journal
    ops: HostOps
    outcome: DrillOutcome
    budget: Budget
    sig: StopSignals = field(default_factory=StopSignals)
    progress: Progress = lambda _msg: None
    prepared: Prepared = field(default_factory=Prepared)
    warm: WarmConnections | None = None
    """Connections to the observed hosts, opening while apply runs (connect/warm.py)."""
