"""The fault matrix's results (pure): one trial's facts, a cell's summary, the tables.

A trial is judged on what a user would find afterwards, never on what ctdrill says
about itself: host state read from the kernel (restored or not, and when), what is
left behind, and whether the next drill runs without anybody in between.
"""

from __future__ import annotations

import signal
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from ctdrill.report.safe import md_code, md_text

Sample = tuple[float, bool]
"""(seconds since the fault, host state == the snapshot before the trial)."""


@dataclass
class Trial:
    """What one injected fault led to."""

    cell: str
    trial: int
    exit: str
    """The faulted process's exit as a label ('3', 'SIGKILL', 'hung', 'revert 5, live 0')."""
    restored: bool
    restore_s: float | None
    leftovers: list[str] = field(default_factory=list)
    next_exit: int | None = None
    notes: list[str] = field(default_factory=list)
    reset: bool = False
    """The bench had to clean up after the trial (a human would have had to)."""

    @property
    def next_ok(self) -> bool:
        return self.next_exit == 0


@dataclass
class CellSummary:
    """One row of docs/FAULTS.md."""

    cell: str
    description: str
    trials: list[Trial]

    @property
    def n(self) -> int:
        return len(self.trials)

    @property
    def restored(self) -> int:
        return sum(t.restored for t in self.trials)

    @property
    def next_ok(self) -> int:
        return sum(t.next_ok for t in self.trials)

    @property
    def leftovers(self) -> Counter[str]:
        return Counter(item for t in self.trials for item in sorted(set(t.leftovers)))

    @property
    def complete(self) -> bool:
        """The goal: every trial restored, nothing left, the next drill ran unattended,
        and the bench had nothing to clean up."""
        return (self.n > 0 and self.restored == self.n and self.next_ok == self.n
                and not self.leftovers and not any(t.reset for t in self.trials))


def exit_label(code: int | None) -> str:
    """A process's exit for the table: its code, the signal that killed it, or 'hung'."""
    if code is None:
        return "hung"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return str(code)


def restore_time(samples: list[Sample]) -> float | None:
    """Seconds from the fault until the host state equalled the snapshot for good: 0 when
    it never differed after the fault, None when the last sample still differs."""
    if not samples or not samples[-1][1]:
        return None
    last_bad = max((i for i, (_, equal) in enumerate(samples) if not equal), default=None)
    if last_bad is None:
        return 0.0
    return max(0.0, samples[last_bad + 1][0])


def _counts(counts: Counter[str]) -> str:
    """'3 (2x), SIGKILL': each distinct item once, with how many trials showed it."""
    return ", ".join(f"{item} ({n}x)" if n > 1 else item
                     for item, n in sorted(counts.items())) or "-"


def _seconds(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} / {max(values):.1f}"


def _pct(k: int, n: int) -> str:
    return f"{k}/{n}" + (" **!**" if k < n else "")


def _own(text: str) -> str:
    """The bench's own Markdown (fault descriptions) inside a table cell: no pipes."""
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(cells: list[CellSummary]) -> str:
    rows = ["| cell | fault | trials | exit codes | restored | time to restore s "
            "(median / max) | leftovers after settling | next drill unattended |",
            "|---|---|---|---|---|---|---|---|"]
    for c in cells:
        times = [t.restore_s for t in c.trials if t.restore_s is not None]
        rows.append(f"| {md_code(c.cell, in_table=True)} | {_own(c.description)} | {c.n} | "
                    f"{md_text(_counts(Counter(t.exit for t in c.trials)))} | "
                    f"{_pct(c.restored, c.n)} | {_seconds(times)} | "
                    f"{md_text(_counts(c.leftovers))} | {_pct(c.next_ok, c.n)} |")
    return "\n".join(rows)


def render_goal(cells: list[CellSummary]) -> str:
    done = sum(c.complete for c in cells)
    trials = sum(c.n for c in cells)
    restored = sum(c.restored for c in cells)
    nxt = sum(c.next_ok for c in cells)
    return (f"Goal: 100 % restored and 100 % next-drill-ok in every cell, nothing left "
            f"behind. Cells meeting it: {done}/{len(cells)}; trials restored "
            f"{restored}/{trials}, next drill unattended {nxt}/{trials}.")


def render_findings(cells: list[CellSummary]) -> str:
    """Every trial that missed the goal or carried a note, with what it showed."""
    lines = []
    for c in cells:
        for t in c.trials:
            missed = not t.restored or not t.next_ok or t.leftovers or t.reset
            if not missed and not t.notes:
                continue
            what = []
            if not t.restored:
                what.append("NOT restored")
            if t.leftovers:
                what.append("left " + ", ".join(t.leftovers))
            if not t.next_ok:
                what.append(f"next drill exit {exit_label(t.next_exit)}")
            if t.reset:
                what.append("the bench had to clean up")
            lines.append(f"- {md_code(c.cell)} trial {t.trial} (exit {md_text(t.exit)}): "
                         + md_text("; ".join(what + t.notes)))
    return "\n".join(lines) or "None: every trial met the goal without a note."


def to_json(cells: list[CellSummary]) -> list[dict[str, Any]]:
    return [{"cell": c.cell, "fault": c.description, "trials": c.n, "restored": c.restored,
             "next_ok": c.next_ok, "complete": c.complete, "leftovers": dict(c.leftovers),
             "runs": [dict(asdict(t), next_ok=t.next_ok) for t in c.trials]}
            for c in cells]
