"""SIGINT/SIGTERM become a stop request checked at safe points, never an abrupt exit.

The first signal asks the drill to stop; the revert always runs. Signals that arrive
while reverting are acknowledged and ignored, so a second Ctrl-C cannot skip it. Waits
(for a lock, a kernel owner) poll `checkpoint`, so a stop is honoured there too, before
anything is locked or snapshotted. The stop reason names the operator's signal: local
children run in their own session (ctdrill/system/children.py), so a terminal's Ctrl-C
reaches ctdrill alone and is never mistaken for, say, telemetry that ended.
"""

from __future__ import annotations

import signal
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager


class StopRequested(Exception):
    """Raised at a checkpoint after SIGINT/SIGTERM, or by a guard."""


def interrupt_reason(signum: int) -> str:
    """How the journal names an operator's stop: 'interrupted by SIGINT (Ctrl-C)'."""
    name = signal.Signals(signum).name
    return f"interrupted by {name}" + (" (Ctrl-C)" if signum == signal.SIGINT else "")


class StopSignals:
    def __init__(self) -> None:
        self.reason: str | None = None
        self.reverting = False

    def handle(self, signum: int, _frame: types.FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.reverting:
            sys.stderr.write(f"ctdrill: {name} received while reverting: the revert continues\n")
            return
        if self.reason is None:
            self.reason = interrupt_reason(signum)
            sys.stderr.write(f"ctdrill: {name}: stopping the drill; it will revert first\n")
        else:
            sys.stderr.write(f"ctdrill: {name} again: already stopping, the revert still runs\n")

    @property
    def requested(self) -> bool:
        return self.reason is not None

    def checkpoint(self) -> None:
        """Raise StopRequested once a stop was asked for (called between steps and by
        every wait loop)."""
        if self.reason is not None:
            raise StopRequested(self.reason)


@contextmanager
def stop_signals(state: StopSignals | None = None) -> Iterator[StopSignals]:
    """Route SIGINT/SIGTERM to `state` (a new one by default: a run context brings its
    own) for the duration, then restore the previous handlers."""
    state = state if state is not None else StopSignals()
    previous = {s: signal.signal(s, state.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
