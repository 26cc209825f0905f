"""Durable or nothing: the journal's directory is checked before any host is touched
(space, inodes, a written and fsynced probe), and new directories are fsynced into
their parents so the journal survives a power cut with the records fsynced into it."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from pathlib import Path

from ctdrill.errors import EnvironmentProblem

MIN_FREE_BYTES = 16 << 20
"""Free space the journal directory must have before a drill starts (a long drill at
high telemetry rates writes a few MiB)."""
MIN_FREE_INODES = 16
PROBE_BYTES = 4096

WriteFn = Callable[[int, bytes], int]
SyncFn = Callable[[int], None]
StatvfsFn = Callable[[Path], os.statvfs_result]


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durable(directory: Path) -> None:
    """mkdir -p, fsyncing each parent that gained an entry, so the journal's directory
    survives a power cut together with the records fsynced into it."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        fsync_dir(d.parent)


def write_all(fd: int, data: bytes, write: WriteFn) -> None:
    """os.write may write less than asked (a filling disk): write the rest, or raise."""
    view = memoryview(data)
    while view:
        n = write(fd, view.tobytes())
        if n <= 0:
            raise OSError(errno.ENOSPC, "no progress writing (disk full?)")
        view = view[n:]


def _free_space_problem(st: os.statvfs_result, min_free: int) -> str | None:
    free = st.f_bavail * st.f_frsize
    if free < min_free:
        return f"{free // 1024} KiB free, at least {min_free // 1024} KiB needed"
    if st.f_files > 0 and st.f_favail < MIN_FREE_INODES:  # f_files 0: no inode limit
        return f"{st.f_favail} inodes free"
    return None


def check_journal_dir(directory: Path, *, min_free_bytes: int = MIN_FREE_BYTES,
                      statvfs: StatvfsFn = os.statvfs, write: WriteFn = os.write,
                      fsync: SyncFn = os.fsync) -> None:
    """Refuse (EnvironmentProblem, exit 5) before any host is touched when the journal
    could not be written: the directory cannot be created, is not writable, lacks space
    or inodes, or a probe file cannot be written and fsynced."""
    hint = (f"free space in {directory} or point CTDRILL_RUNS_DIR at a writable "
            "filesystem; nothing was changed")
    try:
        make_dirs_durable(directory)
        problem = _free_space_problem(statvfs(directory), min_free_bytes)
    except OSError as exc:
        raise EnvironmentProblem(f"journal directory {directory}: {exc.strerror or exc}",
                                 hint) from None
    if problem:
        raise EnvironmentProblem(f"journal directory {directory}: {problem}", hint)
    probe = directory / f".ctdrill-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            write_all(fd, b"\0" * PROBE_BYTES, write)
            fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise EnvironmentProblem(f"journal directory {directory}: cannot write and fsync "
                                 f"a file ({exc.strerror or exc})", hint) from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
