"""What a drill run returns: exit code, reason, verdicts, reverts, plans and timings.

A leaf of plain data, so callers (the public API, the CLI, game days) can name it
without importing the steps that fill it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctdrill.engine.hostops import HostRevert
from ctdrill.engine.plan import HostPlan
from ctdrill.engine.verdict import Verdict
from ctdrill.engine.waves import RolloutOutcome
from ctdrill.errors import ExitCode


@dataclass
class DrillOutcome:
    run_id: str
    journal: Path
    exit_code: ExitCode
    reason: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    reverts: dict[str, HostRevert] = field(default_factory=dict)
    plans: dict[str, HostPlan] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    transitions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    final_regime: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    rollout: RolloutOutcome | None = None
    """The waves of a spec with a rollout: applied, and the guard that stopped them."""

    @property
    def reverted_ok(self) -> bool:
        return all(r.verified for r in self.reverts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "journal": str(self.journal),
            "exit_code": int(self.exit_code), "reason": self.reason,
            "expectations": [v.to_json() for v in self.verdicts],
            "revert": {h: {"verified": r.verified, "restored": r.restored,
                           "deleted": r.deleted, "problems": r.problems}
                       for h, r in self.reverts.items()},
            "changes": {h: p.to_json() for h, p in self.plans.items()},
            "load": self.load, "timings_s": self.timings,
            "transitions": self.transitions, "final_regime": self.final_regime,
            "metrics": self.metrics,
            "rollout": None if self.rollout is None else self.rollout.to_json(),
        }
