"""The live status line of `ctdrill run` and `gameday run`, driven by the run's journal.

The display subscribes to the run's typed journal records (ctdrill.api's `on_event`):
what it shows is what was just made durable, never a separate story. Before a run's
journal exists (building an ephemeral lab), and between the runs of a game day, the
API's progress notes fill in. Records are read by their `kind` and fields only, so
this module imports nothing below the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctdrill.api import Event


def _ctr(entry: Any) -> float | None:
    """The CTR of a samples entry's window (none for a stream's first sample)."""
    metrics = getattr(entry, "metrics", None)
    return None if metrics is None else float(metrics.ctr)


def _revert(r: Any) -> str:
    return f"{r.host}: revert {'verified' if r.verified else 'NOT verified'}"


def _lost(r: Any) -> str:
    if r.why == "ended":
        return f"{r.host}: telemetry ended"
    return f"{r.host}: telemetry stalled (no sample for {r.silent_s:.1f} s)"


TEXT: dict[str, Callable[[Any], str]] = {
    "waiting": lambda r: str(r.why),
    "locking": lambda r: f"locking and snapshotting {', '.join(r.hosts)}",
    "budget": lambda r: "arming the dead-man switch and applying changes",
    "step_start": lambda r: f"step {r.step}",
    "load_start": lambda r: f"load started at t+{r.offset_s:.1f} s",
    "probe_start": lambda r: f"probe started at t+{r.offset_s:.1f} s",
    "transition": lambda r: f"{r.host}: {r.from_state} -> {r.to_state}",
    "target_lost": _lost,
    "target_resumed": lambda r: f"{r.host}: telemetry resumed after {r.silent_s:.1f} s",
    "verdict": lambda r: f"{'pass' if r.passed else 'FAIL'}: {r.name}",
    "abort": lambda r: f"stopping: {r.reason}",
    "reverting": lambda r: "reverting and verifying",
    "revert": _revert,
}
"""Record kind -> the status it sets; kinds not named leave the line as it is."""


class LiveStatus:
    """One status line (`update(text)`, e.g. a rich spinner's) fed by journal records
    (call the object) and by progress notes (`note`), which show only outside a run."""

    def __init__(self, update: Callable[[str], None]) -> None:
        self.update = update
        self.drill: str | None = None
        """The drill whose run is in progress (between its `start` and `end`)."""
        self.ctr: dict[str, float] = {}

    def note(self, text: str) -> None:
        if self.drill is None:
            self.update(text)

    def __call__(self, record: Event) -> None:
        r: Any = record
        if r.kind == "start":
            self.drill, self.ctr = r.drill, {}
            self.update(f"drill {self.drill}: run {r.run_id}")
        elif r.kind in ("end", "refused") or self.drill is None:
            self.drill = None  # the run is over (a refused run journals no `end`)
        elif r.kind == "samples":
            ctr = _ctr(r.samples[-1]) if r.samples else None
            if ctr is not None:
                self.ctr[r.host] = ctr
                self.update(f"drill {self.drill}: observing, CTR " + ", ".join(
                    f"{h} {c:.2f}" for h, c in sorted(self.ctr.items())))
        elif r.kind in TEXT:
            self.update(f"drill {self.drill}: {TEXT[r.kind](r)}")
