"""The write-ahead journal: append-only JSON lines, flushed and fsynced per record.

It is written before each effect (intent) and after it (outcome), so that after any
crash it alone says what may have changed and how to put it back. Durable or nothing:
the directory is checked (space, inodes, a fsynced probe) before any host is touched,
new directories and the file are fsynced into their parents, and the first failed
write raises `JournalWriteFailed` once; the journal then drops (and counts) later
records instead of raising again, so the revert that must follow can still run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctdrill.errors import EnvironmentProblem, InvalidInput

MIN_FREE_BYTES = 16 << 20
"""Free space the journal directory must have before a drill starts (a long drill at
high telemetry rates writes a few MiB)."""
MIN_FREE_INODES = 16
PROBE_BYTES = 4096
REOPENED = "reopened"
"""Record written when an existing journal is opened whose last line is torn: it marks
the torn line as a crashed writer's, so readers skip it instead of calling it corrupt."""

WriteFn = Callable[[int, bytes], int]
SyncFn = Callable[[int], None]
StatvfsFn = Callable[[Path], os.statvfs_result]


class JournalWriteFailed(EnvironmentProblem):
    """The journal could not be written (ENOSPC, EIO, ...). Exit 5 before any change;
    the engine reports exit 4 when changes had begun (it reverts first)."""


def _fsync_dir(path: Path) -> None:
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
        _fsync_dir(d.parent)


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
            _write_all(fd, b"\0" * PROBE_BYTES, write)
            fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise EnvironmentProblem(f"journal directory {directory}: cannot write and fsync "
                                 f"a file ({exc.strerror or exc})", hint) from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def _encode(record: dict[str, Any]) -> bytes:
    """One JSON line; ASCII only (ensure_ascii), so a torn line never splits a character."""
    return (json.dumps(record, default=str, separators=(",", ":")) + "\n").encode()


def _write_all(fd: int, data: bytes, write: WriteFn) -> None:
    """os.write may write less than asked (a filling disk): write the rest, or raise."""
    view = memoryview(data)
    while view:
        n = write(fd, view.tobytes())
        if n <= 0:
            raise OSError(errno.ENOSPC, "no progress writing (disk full?)")
        view = view[n:]


def _torn_tail(fd: int) -> int:
    """Bytes after the last newline of an existing file (a crashed writer's torn line)."""
    size = os.fstat(fd).st_size
    tail = os.pread(fd, min(size, 1 << 20), max(0, size - (1 << 20)))
    if not tail or tail.endswith(b"\n"):
        return 0
    return len(tail) - (tail.rfind(b"\n") + 1)


class Journal:
    """One run's journal, opened for appending (a recovery appends to the run's file).

    `failed` is the first write failure (None while healthy); `dropped` counts records
    not written since then.
    """

    def __init__(self, path: Path, *, write: WriteFn = os.write,
                 fsync: SyncFn = os.fsync) -> None:
        self.path = path
        self.failed: JournalWriteFailed | None = None
        self.dropped = 0
        self._write, self._fsync = write, fsync
        self._fd = -1
        try:
            make_dirs_durable(path.parent)
            created = not path.exists()
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            fsync(self._fd)
            if created:
                _fsync_dir(path.parent)
        except OSError as exc:
            self.close()
            raise JournalWriteFailed(f"cannot create journal {path}: {exc.strerror or exc}",
                                     "free space or fix permissions there; nothing was "
                                     "changed") from None
        torn = _torn_tail(self._fd)
        if torn:
            marker = {"type": REOPENED, "t": time.time(), "torn_bytes": torn}
            self._append(b"\n" + _encode(marker), REOPENED)

    def _append(self, data: bytes, kind: str) -> None:
        if self.failed is not None:
            self.dropped += 1
            return
        try:
            _write_all(self._fd, data, self._write)
            self._fsync(self._fd)
        except OSError as exc:
            self.failed = JournalWriteFailed(
                f"journal {self.path}: writing '{kind}' failed ({exc.strerror or exc})",
                "free space there; what ctdrill changed is reverted, and the journal "
                "lacks the records after this one")
            self.dropped += 1
            raise self.failed from None

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append and fsync one record. The first failure raises JournalWriteFailed;
        later records are dropped (counted in `dropped`) without raising."""
        record = {"type": kind, "t": time.time(), **fields}
        self._append(_encode(record), kind)
        return record

    def try_write(self, kind: str, **fields: Any) -> bool:
        """`write` that never raises: for revert and cleanup paths, which must go on."""
        try:
            self.write(kind, **fields)
        except JournalWriteFailed:
            return False
        return self.failed is None

    def close(self) -> None:
        if self._fd >= 0:
            # the records were fsynced one by one: a failing close loses nothing
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


def _load_bytes(path: Path) -> bytes:
    hint = "pass the journal.jsonl path that the drill printed"
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"{path} is not a ctdrill journal (not a regular file)", hint)
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read journal {path}: {exc.strerror or exc}",
                           hint) from None


def _decode(path: Path, data: bytes) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not a ctdrill journal (not UTF-8 text)",
                           "pass a run's journal.jsonl") from None
    return text.splitlines()


def _parse(line: str) -> dict[str, Any] | None:
    """One record, or None when the line is not a JSON object with a string type."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    if isinstance(rec, dict) and isinstance(rec.get("type"), str):
        return rec
    return None


def _corrupt(path: Path, index: int) -> InvalidInput:
    return InvalidInput(f"journal {path} line {index + 1} is corrupt",
                        "the journal must be the unedited file ctdrill wrote")


def read_journal(path: Path) -> list[dict[str, Any]]:
    """All complete records. A torn line (a crash mid-write) is skipped when it is the
    last line or the next writer marked it (`reopened`); any other bad line, a binary or
    non-UTF-8 file, or a file without a start record is one InvalidInput line."""
    records: list[dict[str, Any]] = []
    bad: int | None = None  # a line that is not a record, not yet explained
    for i, line in enumerate(_decode(path, _load_bytes(path))):
        if not line.strip("\0 \t\r"):
            continue
        rec = _parse(line)
        if bad is not None and (rec is None or rec["type"] != REOPENED):
            raise _corrupt(path, bad)
        bad = i if rec is None else None
        if rec is not None:
            records.append(rec)
    if not records or records[0]["type"] != "start" or not isinstance(
            records[0].get("run_id"), str):
        what = "is empty" if not records else "has no start record"
        raise InvalidInput(f"{path} is not a ctdrill journal (it {what}; truncated?)",
                           "pass a run's journal.jsonl")
    return records
