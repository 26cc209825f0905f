"""The write-ahead journal: append-only JSON lines, flushed and fsynced per record, and
the event stream the live display (and any other handler) subscribes to.

It is written before each effect (intent) and after it (outcome), so that after any
crash it alone says what may have changed and how to put it back. Every record is a
typed one (journal/records.py), validated as it is written. The first failed write
raises `JournalWriteFailed` once; the journal then drops (and counts) later records
instead of raising again, so the revert that must follow can still run. A handler's
exception never reaches the writer: it is logged and the handler dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import ctdrill.journal.durable as durable
from ctdrill.errors import EnvironmentProblem
from ctdrill.journal.durable import SyncFn, WriteFn, make_dirs_durable, write_all
from ctdrill.journal.records import (
    SCHEMA_VERSION,
    Record,
    RecordInvalid,
    RecordModel,
    ReopenedRecord,
    build_record,
    check_declared,
    record_json,
)

log = logging.getLogger(__name__)

REOPENED = "reopened"
"""Record written when an existing journal is opened whose last line is torn: it marks
the torn line as a crashed writer's, so readers skip it instead of calling it corrupt."""
STRICT_ENV = "CTDRILL_JOURNAL_STRICT"
"""Set to 1 (the test suites do) and a record that does not validate raises even on the
revert path (`try_write`); otherwise it is logged and written as given there."""

R = TypeVar("R", bound=RecordModel)
Handler = Callable[[Record], None]
"""A subscriber: called with each typed record after it was written (or dropped)."""


class JournalWriteFailed(EnvironmentProblem):
    """The journal could not be written (ENOSPC, EIO, ...). Exit 5 before any change;
    the engine reports exit 4 when changes had begun (it reverts first)."""


def _encode(record: dict[str, Any]) -> bytes:
    """One JSON line; ASCII only (ensure_ascii), so a torn line never splits a character."""
    return (json.dumps(record, default=str, separators=(",", ":")) + "\n").encode()


def _torn_tail(fd: int) -> int:
    """Bytes after the last newline of an existing file (a crashed writer's torn line)."""
    size = os.fstat(fd).st_size
    tail = os.pread(fd, min(size, 1 << 20), max(0, size - (1 << 20)))
    if not tail or tail.endswith(b"\n"):
        return 0
    return len(tail) - (tail.rfind(b"\n") + 1)


def _stamped(record: R) -> R:
    """The record as this writer writes it: its time (now, unless it carries its own)
    and the current schema version."""
    update: dict[str, Any] = {"v": SCHEMA_VERSION}
    if record.t is None:
        update["t"] = time.time()
    return record.model_copy(update=update)


class Journal:
    """One run's journal, opened for appending (a recovery appends to the run's file).

    `failed` is the first write failure (None while healthy); `dropped` counts records
    not written since then; `invalid` counts records written unvalidated (revert path,
    not strict); `handler_errors` says which subscribers failed and were dropped.
    """

    def __init__(self, path: Path, *, write: WriteFn = os.write,
                 fsync: SyncFn = os.fsync, strict: bool | None = None) -> None:
        self.path = path
        self.failed: JournalWriteFailed | None = None
        self.dropped = 0
        self.invalid = 0
        self.strict = os.environ.get(STRICT_ENV) == "1" if strict is None else strict
        self.handler_errors: list[str] = []
        self._handlers: list[Handler] = []
        self._write, self._fsync = write, fsync
        self._lock = threading.RLock()  # a step's apply journals from its own thread
        self._fd = -1
        try:
            make_dirs_durable(path.parent)
            created = not path.exists()
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            fsync(self._fd)
            if created:
                durable.fsync_dir(path.parent)
        except OSError as exc:
            self.close()
            raise JournalWriteFailed(f"cannot create journal {path}: {exc.strerror or exc}",
                                     "free space or fix permissions there; nothing was "
                                     "changed") from None
        torn = _torn_tail(self._fd)
        if torn:
            marker = _stamped(ReopenedRecord(torn_bytes=torn))
            self._append(b"\n" + _encode(record_json(marker)), REOPENED)

    def _append(self, data: bytes, kind: str) -> None:
        if self.failed is not None:
            self.dropped += 1
            return
        try:
            write_all(self._fd, data, self._write)
            self._fsync(self._fd)
        except OSError as exc:
            self.failed = JournalWriteFailed(
                f"journal {self.path}: writing '{kind}' failed ({exc.strerror or exc})",
                "free space there; what ctdrill changed is reverted, and the journal "
                "lacks the records after this one")
            self.dropped += 1
            raise self.failed from None

    # ------------------------------------------------------------ the event stream

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call `handler(record)` after each record is written; returns the unsubscribe."""
        self._handlers.append(handler)
        return lambda: self._unsubscribe(handler)

    def _unsubscribe(self, handler: Handler) -> None:
        with contextlib.suppress(ValueError):
            self._handlers.remove(handler)

    def _notify(self, record: RecordModel) -> None:
        for handler in list(self._handlers):
            try:
                handler(cast(Record, record))
            except Exception as exc:  # a display's bug must not stop a drill or a revert
                why = f"journal handler {handler!r} failed ({exc!r}); dropped"
                log.warning("%s", why)
                self.handler_errors.append(why)
                self._unsubscribe(handler)

    def emit(self, record: R) -> R:
        """Append and fsync one typed record, then hand it to every subscriber (also
        when the write failed: the event happened). The first write failure raises
        JournalWriteFailed; later records are dropped and counted. Returns the record
        as written (with its time and version)."""
        return self._emit(record)[0]

    def _emit(self, record: R) -> tuple[R, dict[str, Any]]:
        check_declared(record)
        stamped = _stamped(record)
        data = record_json(stamped)
        with self._lock:
            try:
                self._append(_encode(data), str(data["type"]))
            finally:
                self._notify(stamped)
        return stamped, data

    def try_emit(self, record: RecordModel) -> bool:
        """`emit` that never raises on a write failure: for revert and cleanup paths."""
        try:
            self.emit(record)
        except JournalWriteFailed:
            return False
        except RecordInvalid:
            if self.strict:
                raise
            return self._unvalidated(str(getattr(record, "kind", "")),
                                     record.model_dump(by_alias=True, exclude_unset=True,
                                                       exclude={"kind", "v", "t"}))
        return self.failed is None

    # ------------------------------------------------------------ keyword writers

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        """`emit` of the record `kind` built from `fields` (validated: a bad field is
        RecordInvalid, a bug). Returns the record as written, as JSON."""
        return self._emit(build_record(kind, fields))[1]

    def try_write(self, kind: str, **fields: Any) -> bool:
        """`write` that never raises: for revert and cleanup paths, which must go on.
        A record that does not validate is logged and written as given (strict: raises)."""
        try:
            record = build_record(kind, fields)
        except RecordInvalid:
            if self.strict:
                raise
            return self._unvalidated(kind, fields)
        return self.try_emit(record)

    def _unvalidated(self, kind: str, fields: dict[str, Any]) -> bool:
        """Keep the evidence of a record that does not validate (a bug): readers see it
        as an InvalidRecord; the revert goes on."""
        self.invalid += 1
        log.warning("journal: '%s' record does not validate; written as given", kind)
        data = {"type": kind, "v": SCHEMA_VERSION, "t": time.time(), **fields}
        try:
            self._append(_encode(data), kind)
        except JournalWriteFailed:
            return False
        return self.failed is None

    def close(self) -> None:
        if self._fd >= 0:
            # the records were fsynced one by one: a failing close loses nothing
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
