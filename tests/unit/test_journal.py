"""The journal is durable or nothing: a preflight refuses a directory it could not
write, the first failed write raises once and later ones are dropped (so the revert
can run), and no journal file, however broken, makes a reader raise anything but one
InvalidInput line."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctdrill.cli.app import app
from ctdrill.engine.recover import load_recovery_plan
from ctdrill.errors import EnvironmentProblem, ExitCode, InvalidInput
from ctdrill.journal import (
    MIN_FREE_BYTES,
    Journal,
    JournalWriteFailed,
    check_journal_dir,
    durable,
    read_journal,
)

START = {"type": "start", "run_id": "r1", "inventory": "/inv"}


def statvfs_with(free_bytes: int, free_inodes: int = 1000, inodes: int = 2000
                 ) -> Callable[[Path], os.statvfs_result]:
    def fake(_path: Path) -> os.statvfs_result:
        # bsize, frsize, blocks, bfree, bavail, files, ffree, favail, flag, namemax
        return os.statvfs_result((4096, 1, 1 << 40, free_bytes, free_bytes, inodes,
                                  free_inodes, free_inodes, 0, 255))
    return fake


def enospc_after(n_bytes: int) -> Callable[[int, bytes], int]:
    """os.write on a filesystem with `n_bytes` left: a short write, then ENOSPC."""
    left = [n_bytes]

    def write(fd: int, data: bytes) -> int:
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(fd, data[:left[0]])
        left[0] -= n
        return n
    return write


# ------------------------------------------------------------------ preflight

def test_preflight_creates_a_missing_directory_and_leaves_no_probe(tmp_path: Path) -> None:
    runs = tmp_path / "a" / "b" / "runs"
    check_journal_dir(runs)
    assert runs.is_dir() and list(runs.iterdir()) == []


@pytest.mark.parametrize(("statvfs", "says"), [
    (statvfs_with(MIN_FREE_BYTES - 1), "KiB free"),
    (statvfs_with(1 << 30, free_inodes=0), "0 inodes free"),
], ids=["space", "inodes"])
def test_preflight_refuses_a_full_filesystem(tmp_path: Path, statvfs: Callable[[Path],
                                             os.statvfs_result], says: str) -> None:
    with pytest.raises(EnvironmentProblem, match=says) as info:
        check_journal_dir(tmp_path, statvfs=statvfs)
    assert info.value.exit_code == ExitCode.ENVIRONMENT
    assert "nothing was changed" in info.value.one_line()


def test_preflight_ignores_inodes_where_the_filesystem_has_no_limit(tmp_path: Path) -> None:
    check_journal_dir(tmp_path, statvfs=statvfs_with(1 << 30, free_inodes=0, inodes=0))


def test_preflight_refuses_when_a_probe_cannot_be_written_or_fsynced(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="cannot write and fsync"):
        check_journal_dir(tmp_path, write=enospc_after(100))

    def eio(_fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    with pytest.raises(EnvironmentProblem, match="Input/output error"):
        check_journal_dir(tmp_path, fsync=eio)
    assert list(tmp_path.iterdir()) == []  # the probe is gone either way


def test_preflight_refuses_a_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(EnvironmentProblem, match="journal directory"):
        check_journal_dir(tmp_path / "f" / "runs")
    with pytest.raises(EnvironmentProblem, match="journal directory"):
        check_journal_dir(tmp_path / "f")


def test_new_directories_and_the_file_are_fsynced_into_their_parents(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(durable, "fsync_dir", synced.append)
    Journal(tmp_path / "runs" / "r1" / "journal.jsonl").close()
    assert synced == [tmp_path, tmp_path / "runs", tmp_path / "runs" / "r1"]


# ------------------------------------------------------------------ write failures

def test_first_write_failure_raises_once_then_records_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    j = Journal(path, write=enospc_after(len(json.dumps(START)) + 60))
    j.write("start", run_id="r1", inventory="/inv")
    with pytest.raises(JournalWriteFailed) as info:
        j.write("metrics", metrics={"gw": {"ctr": 0.5}})
    err = info.value
    assert err.exit_code == ExitCode.ENVIRONMENT
    assert "'metrics'" in err.message and "No space left" in err.message
    assert "\n" not in err.one_line()
    assert j.failed is err
    j.write("abort", reason="x")  # the revert path goes on: no second raise
    assert j.try_write("revert", host="gw", verified=False) is False
    assert j.dropped == 3
    j.close()
    assert [r["type"] for r in read_journal(path)] == ["start"]  # the torn line is skipped


def test_an_fsync_failure_is_a_write_failure(tmp_path: Path) -> None:
    calls = [0]

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] > 2:  # the open, the start record; then EIO
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        os.fsync(fd)
    j = Journal(tmp_path / "j.jsonl", fsync=fsync)
    assert j.try_write("start", run_id="r1")
    assert not j.try_write("locked", hosts=["gw"])
    assert j.failed is not None and "Input/output error" in j.failed.message


def test_short_writes_are_completed(tmp_path: Path) -> None:
    def one_byte(fd: int, data: bytes) -> int:
        return os.write(fd, data[:1])
    j = Journal(tmp_path / "j.jsonl", write=one_byte)
    j.write("start", run_id="r1", inventory="/inv")
    j.write("end", exit_code=0)
    assert [r["type"] for r in read_journal(tmp_path / "j.jsonl")] == ["start", "end"]


def test_a_journal_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(JournalWriteFailed, match="cannot create journal"):
        Journal(tmp_path / "f" / "journal.jsonl")


def test_reopening_a_torn_journal_marks_the_torn_line(tmp_path: Path) -> None:
    """`ctdrill revert` appends to a crashed run's journal: its records must stay
    readable after the torn line the crash left."""
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps(START) + '\n{"type": "snaps')
    j = Journal(path)
    j.write("recovery_start", pid=os.getpid(), hosts=[])
    j.close()
    kinds = [r["type"] for r in read_journal(path)]
    assert kinds == ["start", "reopened", "recovery_start"]
    path.write_text(json.dumps(START) + '\n{"type": "snaps\n'
                    + json.dumps({"type": "end"}) + "\n")
    with pytest.raises(InvalidInput, match="line 2 is corrupt"):
        read_journal(path)


# ------------------------------------------------------------------ reading anything

BROKEN: dict[str, bytes] = {
    "empty": b"",
    "blank": b"\n\n  \n",
    "nul-filled": b"\0" * 4096,
    "binary": bytes(range(256)) * 8,
    "latin-1": "d\xe9j\xe0 vu\n".encode("latin-1"),
    "utf-16": json.dumps(START).encode("utf-16"),
    "truncated-start": json.dumps(START).encode()[:20],
    "json-array": b"[1, 2, 3]\n",
    "json-string": b'"start"\n',
    "no-type": b'{"run_id": "r1"}\n',
    "not-start": b'{"type": "end"}\n',
    "start-without-run-id": b'{"type": "start"}\n',
    "corrupt-middle": (json.dumps(START) + "\nnot json\n" + json.dumps(START) + "\n").encode(),
}


@pytest.mark.parametrize("content", BROKEN.values(), ids=BROKEN.keys())
def test_no_broken_journal_raises_anything_but_invalid_input(
        tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(content)
    with pytest.raises(InvalidInput) as info:
        read_journal(path)
    assert info.value.exit_code == ExitCode.INVALID_INPUT
    assert "\n" not in info.value.one_line()


def test_a_directory_or_a_fifo_is_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (tmp_path, fifo, tmp_path / "absent.jsonl"):
        with pytest.raises(InvalidInput):
            read_journal(path)


def test_a_journal_missing_what_a_revert_needs_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text(json.dumps({"type": "start", "run_id": "r1"}) + "\n")  # no inventory
    with pytest.raises(InvalidInput, match="incomplete or not ctdrill's"):
        load_recovery_plan(path)
    path.write_text(json.dumps(START) + "\n" + json.dumps({"type": "locked"}) + "\n")
    with pytest.raises(InvalidInput, match="incomplete or not ctdrill's"):
        load_recovery_plan(path)


@pytest.mark.parametrize("name", ["binary", "latin-1", "truncated-start", "empty",
                                  "json-array"])
def test_ctdrill_revert_of_a_broken_journal_is_one_line_exit_2(
        tmp_path: Path, name: str) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(BROKEN[name])
    result = CliRunner().invoke(app, ["revert", str(path)])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert isinstance(result.exception, SystemExit)  # handled, not a traceback
    assert "Traceback" not in result.output
    assert "error:" in result.output
