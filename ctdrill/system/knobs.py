"""Kernel-wide netfilter knobs: recorded, changed under a lock, restored exactly.

nf_conntrack_max and nf_conntrack_buckets are global and writable only in the
initial namespace. Anything that changes them (a capacity-step drill, a test)
holds an exclusive file lock for the whole change, so two changers never
interleave, and restores every value it recorded in a `finally`.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Mapping
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


@contextmanager
def knob_lock(timeout_s: float | None = None) -> Iterator[None]:
    """Exclusive machine-wide lock for changing global knobs (blocks until free)."""
    lock_path = run_dir() / "kernel-knobs.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
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


def wait_for_kernel_owner(timeout_s: float = 120.0) -> None:
    """Wait while a drill holds the kernel owner (or its dead-man revert is pending).

    A killed drill releases the knob lock at once, but its kernel-wide changes stay
    until its dead-man switch fires: recording "originals" in between would record the
    drill's values, and a later restore would put them back.
    """
    path = kernel_owner_drill_lock()
    deadline = time.monotonic() + timeout_s
    while path.exists():
        if time.monotonic() > deadline:
            raise EnvironmentProblem(
                f"the kernel owner is held by a drill ({path.read_text()[:200]})",
                "wait for it to end, or run 'ctdrill revert JOURNAL' for that run")
        time.sleep(0.2)


@contextmanager
def global_knobs(changes: Mapping[str, int | str]) -> Iterator[dict[str, str]]:
    """Apply kernel-wide values for the duration of the block, then restore them exactly.

    Buckets are restored before max so the table is never briefly sized below max.
    Yields the recorded originals.
    """
    with knob_lock():
        wait_for_kernel_owner()
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
