"""Kernel-wide netfilter knobs: recorded, changed under a lock, restored exactly.

nf_conntrack_max and nf_conntrack_buckets are global and writable only in the
initial namespace. Anything that changes them (a capacity-step drill, a test)
holds an exclusive file lock for the whole change, so two changers never
interleave, and restores every value it recorded in a `finally`. Waiting for the
lock polls (flock LOCK_NB) and a caller's stop checkpoint, so Ctrl-C ends a wait.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ctdrill.errors import EnvironmentProblem
from ctdrill.lab.topology import run_dir

GLOBAL_KEYS = ("net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets",
               "net.netfilter.nf_conntrack_expect_max")
PROC_SYS = Path("/proc/sys")


def key_path(key: str, proc_sys: Path = PROC_SYS) -> Path:
    return proc_sys / key.replace(".", "/")


def read_knob(key: str) -> str:
    return key_path(key).read_text().strip()


def write_knob(key: str, value: str) -> None:
    """Write through /proc/sys and read back: `sysctl -w` can print an error yet exit 0."""
    path = key_path(key)
    try:
        path.write_text(f"{value}\n")
    except OSError as exc:
        raise EnvironmentProblem(f"cannot set {key}={value}: {exc.strerror}",
                                 "kernel-wide keys can only be set in the initial namespace "
                                 "as root") from exc
    got = read_knob(key)
    if got != str(value):
        raise EnvironmentProblem(f"{key} reads {got} after writing {value}",
                                 "the kernel rejected or adjusted the value")


Checkpoint = Callable[[], None]
"""Called between polls of a wait; raises to abandon it (the engine's stop checkpoint)."""
POLL_S = 0.1


def _no_stop() -> None:
    return None


def _acquire(fd: int, lock_path: Path, timeout_s: float | None, checkpoint: Checkpoint,
             pause: Callable[[float], None], on_wait: Callable[[str], None]) -> None:
    """flock without blocking in the kernel: a blocked flock() is restarted after a
    signal (PEP 475), so a Ctrl-C would be acted on only once the lock came free."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waited = False
    while True:
        checkpoint()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = _holder(lock_path)
        if not waited:
            waited = True
            on_wait(f"waiting for the kernel-knobs lock ({holder})")
        if deadline is not None and time.monotonic() > deadline:
            raise EnvironmentProblem(f"the kernel-knobs lock {lock_path} is held ({holder})",
                                     "another drill or test changes kernel-wide knobs; "
                                     "retry when it ends")
        pause(POLL_S)


def _holder(lock_path: Path) -> str:
    try:
        pid = lock_path.read_text().strip()
    except OSError:
        pid = ""
    return f"held by pid {pid}" if pid.isdigit() else "holder unknown"


@contextmanager
def knob_lock(timeout_s: float | None = None, *, checkpoint: Checkpoint = _no_stop,
              pause: Callable[[float], None] = time.sleep,
              on_wait: Callable[[str], None] = lambda _msg: None) -> Iterator[None]:
    """Exclusive machine-wide lock for changing global knobs. Waits until it is free
    (or timeout_s), calling `checkpoint` between polls: a stop request raised there
    abandons the wait with nothing locked."""
    lock_path = run_dir() / "kernel-knobs.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _acquire(fd, lock_path, timeout_s, checkpoint, pause, on_wait)
    except BaseException:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def kernel_owner_drill_lock() -> Path:
    """The drill lock of the kernel owner (see ctdrill_host.lock_path). Whoever changes
    kernel-wide knobs runs in the initial namespace, so its own namespace is that one."""
    inode = os.stat("/proc/self/ns/net").st_ino
    return run_dir() / "locks" / f"netns-{inode}.json"


def wait_for_kernel_owner(timeout_s: float = 120.0, *, checkpoint: Checkpoint = _no_stop,
                          pause: Callable[[float], None] = time.sleep) -> None:
    """Wait while a drill holds the kernel owner (or its dead-man revert is pending).

    A killed drill releases the knob lock at once, but its kernel-wide changes stay
    until its dead-man switch fires: recording "originals" in between would record the
    drill's values, and a later restore would put them back. `checkpoint` is called
    between polls, so a stop request ends the wait.
    """
    path = kernel_owner_drill_lock()
    deadline = time.monotonic() + timeout_s
    while path.exists():
        checkpoint()
        if time.monotonic() > deadline:
            raise EnvironmentProblem(
                f"the kernel owner is held by a drill ({path.read_text()[:200]})",
                "wait for it to end, or run 'ctdrill revert JOURNAL' for that run")
        pause(0.2)


@contextmanager
def global_knobs(changes: Mapping[str, int | str], *,
                 checkpoint: Checkpoint = _no_stop) -> Iterator[dict[str, str]]:
    """Apply kernel-wide values for the duration of the block, then restore them exactly.

    Buckets are restored before max so the table is never briefly sized below max.
    Yields the recorded originals. `checkpoint` may abandon the waits (nothing changed).
    """
    with knob_lock(checkpoint=checkpoint):
        wait_for_kernel_owner(checkpoint=checkpoint)
        original = {key: read_knob(key) for key in changes}
        try:
            for key, value in changes.items():
                write_knob(key, str(value))
            yield dict(original)
        finally:
            problems = []
            for key in sorted(original, key=lambda k: "buckets" not in k):
                try:
                    write_knob(key, original[key])
                except EnvironmentProblem as exc:
                    problems.append(exc.one_line())
            if problems:
                raise EnvironmentProblem("could not restore kernel-wide knobs",
                                         "; ".join(problems))
