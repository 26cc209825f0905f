"""The live status line of `ctdrill run`: driven by the run's typed journal records (a
real run's journal, replayed), with progress notes only outside a run."""

from __future__ import annotations

from itertools import groupby

from ctdrill.cli.live import LiveStatus
from ctdrill.journal import parse_record, read_records
from tests.unit.test_report_support import FIXTURES


def shown(*feed: object) -> list[str]:
    """The distinct successive texts the line showed, fed records and ("note", text)."""
    lines: list[str] = []
    live = LiveStatus(lines.append)
    for item in feed:
        if isinstance(item, tuple):
            live.note(item[1])
        else:
            live(item)  # type: ignore[arg-type]
    return [text for text, _ in groupby(lines)]


def test_a_real_runs_records_drive_the_line_from_start_to_revert() -> None:
    records = read_records(FIXTURES / "capacity-step.jsonl")
    lines = shown(("note", "building an ephemeral lab"), *records, ("note", "writing"))
    prefix = "drill capacity-step: "
    assert lines[0] == "building an ephemeral lab"
    assert lines[1] == prefix + f"run {records[0].run_id}"  # type: ignore[union-attr]
    assert prefix + "step max-4k" in lines
    assert prefix + "gw: CT_HEALTHY -> CT_TIGHTENING" in lines
    assert prefix + "observing, CTR gw 1.00" in lines
    assert prefix + "FAIL: NFD falls as capacity rises" in lines
    assert lines[-3:] == [prefix + "gw: revert verified", prefix + "kernel: revert verified",
                          "writing"]  # after `end`, notes show again


def test_notes_during_a_run_do_not_hide_its_records() -> None:
    start = parse_record({"type": "start", "run_id": "R", "drill": "d"})
    locking = parse_record({"type": "locking", "hosts": ["gw", "gw2"]})
    lost = parse_record({"type": "target_lost", "host": "gw", "why": "stalled",
                         "last_sample_t": 1.0, "silent_s": 0.75})
    assert shown(start, locking, ("note", "drill d: locking"), lost) == [
        "drill d: run R", "drill d: locking and snapshotting gw, gw2",
        "drill d: gw: telemetry stalled (no sample for 0.8 s)"]


def test_a_refused_run_ends_the_run_on_the_line() -> None:
    start = parse_record({"type": "start", "run_id": "R", "drill": "d"})
    refused = parse_record({"type": "refused", "reason": "locked by another run"})
    assert shown(start, refused, ("note", "next")) == ["drill d: run R", "next"]
