"""A capacity step's change applied beside the observation loop, not inside it.

Applying a step is an Ansible play (seconds over SSH). Run inline, it froze the loop:
no samples fed, no regime, no guard for those seconds, and the step's window shrank to
what was left of it. Here the play runs in a thread; the loop keeps observing; the
step's window opens when its change is in place (the apply's end), and a step that is
due while the previous apply still runs waits for it. Every way out joins the thread,
so a revert never overlaps an apply.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class StepApplier:
    def __init__(self, apply: Callable[[int], None]) -> None:
        self._apply = apply
        self._thread: threading.Thread | None = None
        self._name = ""
        self._done_at = 0.0
        self._error: BaseException | None = None

    def begin(self, index: int, name: str) -> None:
        """Start applying step `index` (the previous apply must have been collected)."""
        assert self._thread is None, "collect the previous step first"
        self._name, self._error = name, None

        def run() -> None:
            try:
                self._apply(index)
            except BaseException as exc:  # handed to the loop by collect()
                self._error = exc
            self._done_at = time.time()

        self._thread = threading.Thread(target=run, daemon=True, name=f"ctd-step-{index}")
        self._thread.start()

    def collect(self, wait: bool = False) -> tuple[str, float] | None:
        """(step name, when its change was in place) once the apply has ended; its
        error is raised here, in the loop. None while it runs (or nothing started)."""
        thread = self._thread
        if thread is None:
            return None
        if wait:
            thread.join()
        if thread.is_alive():
            return None
        self._thread = None
        if self._error is not None:
            raise self._error
        return self._name, self._done_at
