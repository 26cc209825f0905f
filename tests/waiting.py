"""Waiting on conditions, never on durations: the tests run on shared, noisy machines.

A test that needs something to have happened polls for it (a journal record, a counter,
a file) with a generous deadline; the deadline only bounds a hang, it is never the
thing under test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_POLL = threading.Event()  # never set: wait() is an interruptible pause between polls


def wait_until(probe: Callable[[], T], what: str, timeout: float = 60.0,
               interval: float = 0.02) -> T:
    """Return the first truthy value of `probe()`; fail naming `what` if none comes."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}; it never happened")
        _POLL.wait(interval)


def wait_stable(probe: Callable[[], T], what: str, timeout: float = 30.0,
                interval: float = 0.05, repeats: int = 3) -> T:
    """The value of `probe()` once it has stopped changing for `repeats` polls (a kernel
    counter that is still settling after a sender stopped)."""
    history: list[T] = []

    def settled() -> bool:
        history.append(probe())
        return len(history) > repeats and len(set(map(repr, history[-repeats - 1:]))) == 1

    wait_until(settled, f"{what} to settle", timeout, interval)
    return history[-1]


def ctrl_c(proc: subprocess.Popen[str], sig: signal.Signals = signal.SIGINT) -> None:
    """Deliver a signal as a terminal does: to the whole process group of `proc`, which
    must have been started with start_new_session=True."""
    os.killpg(proc.pid, sig)
