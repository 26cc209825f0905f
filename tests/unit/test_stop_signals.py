"""Ctrl-C is honoured while waiting for a lock, and named as the operator's interrupt.

No sleeps: the waits poll through an injected pause, and the real-signal test waits on
the lines a child prints.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctdrill.engine.signals import StopRequested, StopSignals, interrupt_reason, stop_signals
from ctdrill.errors import EnvironmentProblem
from ctdrill.system import knobs

HANG_S = 60.0


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CTDRILL_RUN_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def held_knob_lock(run_dir: Path) -> Iterator[Path]:
    """Another holder of the kernel-knobs lock (flock conflicts across open files)."""
    path = run_dir / "kernel-knobs.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, b"4242\n")
    try:
        yield path
    finally:
        os.close(fd)


def test_the_reason_names_the_operators_signal() -> None:
    assert interrupt_reason(signal.SIGINT) == "interrupted by SIGINT (Ctrl-C)"
    assert interrupt_reason(signal.SIGTERM) == "interrupted by SIGTERM"
    with stop_signals() as sig:
        sig.checkpoint()
        signal.raise_signal(signal.SIGINT)  # runs the handler before returning
        signal.raise_signal(signal.SIGTERM)
        assert sig.requested
        with pytest.raises(StopRequested, match=r"^interrupted by SIGINT \(Ctrl-C\)$"):
            sig.checkpoint()


def test_signals_while_reverting_are_acknowledged_not_acted_on() -> None:
    sig = StopSignals()
    sig.reverting = True
    sig.handle(signal.SIGINT, None)
    assert not sig.requested
    sig.checkpoint()


def test_a_stop_ends_the_wait_for_a_held_knob_lock(held_knob_lock: Path) -> None:
    sig = StopSignals()
    pauses: list[float] = []
    waits: list[str] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:  # Ctrl-C arrives during the third poll
            sig.handle(signal.SIGINT, None)

    with pytest.raises(StopRequested, match="SIGINT"), \
            knobs.knob_lock(checkpoint=sig.checkpoint, pause=pause, on_wait=waits.append):
        pytest.fail("locked after the operator's interrupt")
    assert len(pauses) == 3
    assert waits == ["waiting for the kernel-knobs lock (held by pid 4242)"]
    assert held_knob_lock.read_text() == "4242\n"  # nothing written as the holder


def test_the_knob_lock_is_taken_once_free_and_names_its_holder(run_dir: Path) -> None:
    with knobs.knob_lock(checkpoint=StopSignals().checkpoint):
        assert (run_dir / "kernel-knobs.lock").read_text() == f"{os.getpid()}\n"


def test_a_knob_lock_wait_can_time_out(held_knob_lock: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="held by pid 4242"), \
            knobs.knob_lock(timeout_s=0, pause=lambda _s: None):
        pytest.fail("locked a held lock")


def test_a_stop_ends_the_wait_for_the_kernel_owner(run_dir: Path) -> None:
    lock = knobs.kernel_owner_drill_lock()
    lock.parent.mkdir(parents=True)
    lock.write_text('{"run_id": "r1"}')
    sig = StopSignals()

    def pause(_seconds: float) -> None:
        sig.handle(signal.SIGTERM, None)

    with pytest.raises(StopRequested, match="interrupted by SIGTERM"):
        knobs.wait_for_kernel_owner(checkpoint=sig.checkpoint, pause=pause)


WAITER = """
import sys
from ctdrill.engine.signals import StopRequested, stop_signals
from ctdrill.system.knobs import knob_lock
try:
    with stop_signals() as sig, knob_lock(checkpoint=sig.checkpoint,
                                          on_wait=lambda m: print(m, flush=True)):
        print("locked", flush=True)
except StopRequested as exc:
    print("stopped:", exc, flush=True)
"""


def test_a_real_ctrl_c_while_a_drill_waits_for_the_knob_lock(held_knob_lock: Path) -> None:
    """The regression: SIGINT used to be acted on only once the lock came free."""
    proc = subprocess.Popen([sys.executable, "-c", WAITER], stdout=subprocess.PIPE,
                            text=True, env={**os.environ})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("waiting for the kernel-knobs lock")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=HANG_S)
    finally:
        proc.kill()
        proc.wait()
    assert out == "stopped: interrupted by SIGINT (Ctrl-C)\n"
    assert proc.returncode == 0
