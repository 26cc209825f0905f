"""A stand-in for the drill engine and the lab manager behind ctdrill.api, for the API
and game-day tests: no root, no host. Each run leaves a real (fixture) journal where
the engine would, so reports can be written from it.
This module holds no tests itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ctdrill.errors import ExitCode
from ctdrill.journal import Journal, read_records
from ctdrill.lifecycle import DrillOutcome

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class FakeRun:
    """What the fake `open_run` hands to the fake `execute` (the real RunContext's
    journal and outcome)."""

    journal: Journal
    outcome: DrillOutcome


class FakeEngine:
    """Stands in for the lifecycle's two halves (open_run, execute, as run_drill calls them) and the lab manager,
    recording calls. Each run's journal is a real one, opened on a copy of a fixture
    run's records; `live` records are written through it while the run "executes"."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                 exit_code: ExitCode = ExitCode.OK, *codes: ExitCode,
                 live: tuple[tuple[str, dict[str, Any]], ...] = ()) -> None:
        """Runs end with `exit_code`, or with `codes` in turn when given."""
        from ctdrill.lab import manager
        from ctdrill.lifecycle import run
        from ctdrill.system import preflight

        self.tmp, self.codes, self.live = tmp_path, [exit_code, *codes], live
        self.calls: list[dict[str, Any]] = []
        self.labs: list[str] = []
        self.downs: list[str] = []
        monkeypatch.setattr(run, "open_run", self.open_run)
        monkeypatch.setattr(run, "execute", self.execute)
        monkeypatch.setattr(manager, "up", self.up)
        monkeypatch.setattr(manager, "down", self.down)
        monkeypatch.setattr(preflight, "require_root", lambda: None)

    def open_run(self, spec: Any, inventory: Path, **kw: Any) -> FakeRun:
        self.calls.append({"drill": spec.drill, "inventory": inventory, **kw})
        code = self.codes[min(len(self.calls), len(self.codes)) - 1]
        run_id = f"RUN{len(self.calls)}"
        path = (kw.get("runs_dir") or self.tmp / "runs") / run_id / "journal.jsonl"
        path.parent.mkdir(parents=True)
        journal = Journal(path)
        if kw.get("on_event") is not None:
            journal.subscribe(kw["on_event"])
        for record in read_records(FIXTURES / "capacity-step.jsonl"):
            journal.emit(record)  # a fixture run's records, heard as they are written
        kw["progress"]("locking")
        return FakeRun(journal, DrillOutcome(run_id, path, code))

    def execute(self, ctx: FakeRun) -> DrillOutcome:
        for kind, fields in self.live:
            ctx.journal.write(kind, **fields)
        ctx.journal.close()
        return ctx.outcome

    def up(self, name: str, *, ssh: bool) -> Any:
        self.labs.append(name)
        plan = type("Plan", (), {"inventory_path": self.tmp / f"{name}.yml"})
        return type("LabUp", (), {"plan": plan})

    def down(self, name: str) -> list[str]:
        self.downs.append(name)
        return []


