"""Durable or nothing, and Ctrl-C everywhere, on the real lab and real filesystems.

A journal directory on a tiny tmpfs is refused before any host is touched; a journal
that fills up mid-drill still ends in a verified revert (exit 4, one line, no
traceback) and the next drill runs unattended; a Ctrl-C while a drill waits for the
kernel-knobs lock stops it there, before anything is locked or snapshotted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctdrill.errors import EnvironmentProblem
from ctdrill.journal import Journal, JournalWriteFailed, check_journal_dir, read_journal
from ctdrill.lab.manager import LabUp
from tests.integration.drillrun import (
    ctdrill,
    host_state,
    journal_of,
    reap_group,
    records,
    spawn,
    wait_for_record,
    write_spec,
)
from tests.waiting import ctrl_c

pytestmark = pytest.mark.root
RUN_DIR = Path(os.environ.get("CTDRILL_RUN_DIR", "/run/ctdrill"))

GW_DRILL = """
drill: journal-fault
targets: {{hosts: gw}}
changes:
  - sysctl: {{net.netfilter.nf_conntrack_udp_timeout: 17}}
    bypass:
      - {{name: orders, protocol: tcp, port: 9001}}
observe: {{hz: 50, duration_s: {duration}}}
revert: {{ttl_s: {ttl}}}
"""
KERNEL_DRILL = """
drill: knob-wait
targets: {hosts: kernel}
changes:
  - sysctl: {net.netfilter.nf_conntrack_max: 131072}
observe: {hosts: kernel, hz: 20, duration_s: 2}
revert: {ttl_s: 60}
"""


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                    str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Take every free byte of the filesystem (the journal's next page then fails)."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as f:
        for chunk in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * chunk)
    return filler


def test_a_tiny_tmpfs_is_refused_and_a_full_one_fails_one_write(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "64k") as small:
        with pytest.raises(EnvironmentProblem, match="KiB free"):
            check_journal_dir(small)
        j = Journal(small / "run" / "journal.jsonl")
        j.write("start", run_id="r1", inventory="/inv")
        failures = 0
        for i in range(64):  # 64 x 4 KiB > 64 KiB
            try:
                j.write("samples", host="gw", samples=[{"sample": {"seq": i, "pad": "x" * 4000}}])
            except JournalWriteFailed as exc:
                failures += 1
                assert os.strerror(errno.ENOSPC) in exc.message
        j.close()
        assert failures == 1 and j.failed is not None and j.dropped > 1
        recs = read_journal(small / "run" / "journal.jsonl")  # torn last line skipped
        assert recs[0]["type"] == "start" and len(recs) < 64


def test_a_journal_on_a_tiny_filesystem_refuses_the_drill_before_any_change(
        lab: LabUp, tmp_path: Path) -> None:
    before = host_state(lab)
    with tmpfs(tmp_path / "small", "64k") as small:
        result = ctdrill("run", str(write_spec(tmp_path / "d.yaml", GW_DRILL.format(
            duration=2, ttl=60))), "-i", str(lab.plan.inventory_path), runs_dir=small)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "KiB free" in result.stderr
    assert host_state(lab) == before
    assert not list(RUN_DIR.glob("locks/*.json"))


def test_a_journal_that_fills_up_mid_drill_still_reverts_then_the_next_drill_runs(
        lab: LabUp, tmp_path: Path) -> None:
    before = host_state(lab)
    spec = write_spec(tmp_path / "d.yaml", GW_DRILL.format(duration=300, ttl=600))
    with tmpfs(tmp_path / "runs", "17m") as runs:
        proc = spawn("run", str(spec), "-i", str(lab.plan.inventory_path), runs_dir=runs)
        try:
            wait_for_record(runs, "samples")
            filler = fill(runs)
            _, err = proc.communicate(timeout=180)
        finally:
            reap_group(proc)
        assert proc.returncode == 4, err
        assert "Traceback" not in err and "journal" in err
        assert host_state(lab) == before  # reverted although nothing more was journaled
        assert not list(RUN_DIR.glob("locks/*.json"))
        filler.unlink()
        journal = journal_of(runs)
        assert journal is not None
        kinds = [r["type"] for r in records(journal)]
        assert "samples" in kinds and "end" not in kinds
        again = ctdrill("revert", str(journal), runs_dir=runs)  # what a human would try
        assert again.returncode == 0, again.stdout + again.stderr
        nxt = ctdrill("run", str(write_spec(tmp_path / "n.yaml", GW_DRILL.format(
            duration=1, ttl=60))), "-i", str(lab.plan.inventory_path), runs_dir=runs)
        assert nxt.returncode == 0, nxt.stdout + nxt.stderr
    assert host_state(lab) == before


def test_ctrl_c_while_waiting_for_the_knob_lock_stops_before_locking(
        lab: LabUp, tmp_path: Path) -> None:
    """The regression: SIGINT was acted on 31 s later, after lock and snapshot."""
    before = host_state(lab)
    runs = tmp_path / "runs"
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(RUN_DIR / "kernel-knobs.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = spawn("run", str(write_spec(tmp_path / "k.yaml", KERNEL_DRILL)), "-i",
                     str(lab.plan.inventory_path), runs_dir=runs)
        try:
            wait_for_record(runs, "waiting")
            ctrl_c(proc)
            _, err = proc.communicate(timeout=60)
        finally:
            reap_group(proc)
    finally:
        os.close(fd)
    assert proc.returncode == 3, err
    journal = journal_of(runs)
    assert journal is not None
    recs = records(journal)
    kinds = {r["type"] for r in recs}
    assert not kinds & {"locking", "locked", "snapshot", "intent"}, kinds
    assert [r["reason"] for r in recs if r["type"] == "abort"] == [
        "interrupted by SIGINT (Ctrl-C)"]
    assert host_state(lab) == before
