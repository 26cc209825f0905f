"""Reading a journal back: as plain JSON objects (`read_journal`) or typed records
(`read_records`). A torn line (a crash mid-write) is skipped when it is the last line
or the next writer marked it (`reopened`); anything else broken is one InvalidInput
line, never a traceback."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from ctdrill.errors import InvalidInput
from ctdrill.journal.records import Record, RecordInvalid, parse_record
from ctdrill.journal.writer import REOPENED


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


def _numbered(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Every complete record with its line index; torn lines handled as documented."""
    records: list[tuple[int, dict[str, Any]]] = []
    bad: int | None = None  # a line that is not a record, not yet explained
    for i, line in enumerate(_decode(path, _load_bytes(path))):
        if not line.strip("\0 \t\r"):
            continue
        rec = _parse(line)
        if bad is not None and (rec is None or rec["type"] != REOPENED):
            raise _corrupt(path, bad)
        bad = i if rec is None else None
        if rec is not None:
            records.append((i, rec))
    return records


def _require_start(path: Path, records: list[tuple[int, dict[str, Any]]]) -> None:
    if not records or records[0][1]["type"] != "start" or not isinstance(
            records[0][1].get("run_id"), str):
        what = "is empty" if not records else "has no start record"
        raise InvalidInput(f"{path} is not a ctdrill journal (it {what}; truncated?)",
                           "pass a run's journal.jsonl")


def read_journal(path: Path) -> list[dict[str, Any]]:
    """All complete records as JSON objects. A non-UTF-8 or binary file, a corrupt
    line that is not a torn one, or a file without a start record is InvalidInput."""
    records = _numbered(path)
    _require_start(path, records)
    return [rec for _, rec in records]


def read_records(path: Path, *, lenient: bool = False,
                 require_start: bool = True) -> list[Record]:
    """All complete records, typed (version-1 journals included). A record that does
    not validate is InvalidInput naming its line, or, `lenient`, an InvalidRecord
    (for readers that show what they can). `require_start=False` reads a fragment."""
    records = _numbered(path)
    if require_start:
        _require_start(path, records)
    out: list[Record] = []
    for i, rec in records:
        try:
            out.append(parse_record(rec, lenient=lenient))
        except RecordInvalid as exc:
            raise InvalidInput(f"journal {path} line {i + 1}: {exc}",
                               "the journal must be the unedited file ctdrill wrote") from None
    return out
