"""The write-ahead journal: append-only JSON lines, flushed and fsynced per record.

It is written before each effect (intent) and after it (outcome), so that after any
crash it alone says what may have changed and how to put it back.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ctdrill.errors import InvalidInput


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        record = {"type": kind, "t": time.time(), **fields}
        line = (json.dumps(record, default=str, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, line)
        os.fsync(self._fd)
        return record

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_journal(path: Path) -> list[dict[str, Any]]:
    """All complete records; a torn last line (crash mid-write) is ignored."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"cannot read journal {path}: {exc.strerror}",
                           "pass the journal.jsonl path that the drill printed") from exc
    records = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            if i == len(lines) - 1:
                break
            raise InvalidInput(f"journal {path} line {i + 1} is corrupt",
                               "the journal must be the unedited file ctdrill wrote") from exc
    if not records or records[0].get("type") != "start":
        raise InvalidInput(f"{path} is not a ctdrill journal", "pass a run's journal.jsonl")
    return records
