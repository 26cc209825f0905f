"""The rollout's journal records: typed, validated when written, read back as their models,
and the only kinds no version-1 journal can hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctdrill.journal import Journal, RecordInvalid, parse_record, read_records
from ctdrill.journal.records import (
    NOT_IN_VERSION_1,
    RECORD_TYPES,
    IntentRecord,
    OutcomeRecord,
    RolloutRecord,
    WaveAppliedRecord,
    WaveCheckRecord,
    WaveStartRecord,
    record_json,
)

WRITTEN: list[tuple[str, dict[str, Any]]] = [
    ("rollout", {"waves": [["gw01"], ["gw02", "gw03"]], "pause_s": 0.5,
                 "watched": ["gw01", "gw02", "gw03"], "halt_regime": "CT_PRESSURED"}),
    ("wave_start", {"index": 0, "hosts": ["gw01"]}),
    ("intent", {"host": "gw01", "sysctl": {"net.netfilter.nf_conntrack_udp_timeout": "11"},
                "nft": None, "ttl_s": 120.0, "wave": 0}),
    ("outcome", {"host": "gw01", "task": "sysctl", "ok": True, "changed": True,
                 "name": "net.netfilter.nf_conntrack_udp_timeout", "before": "30",
                 "after": "11", "step": None, "wave": 0}),
    ("wave_applied", {"index": 0, "hosts": ["gw01"], "apply_s": 1.25}),
    ("wave_check", {"index": 0, "hosts": ["gw01"], "passed": True, "settle_s": 0.51,
                    "windows": {"gw01": 10}, "peaks": {"gw01": {"count": 3, "ctr": 0.01}},
                    "regimes": {"gw01": "CT_HEALTHY"}}),
    ("wave_check", {"index": 1, "hosts": ["gw01", "gw02"], "passed": False, "settle_s": 0.1,
                    "windows": {"gw02": 1}, "peaks": {"gw02": {"count": 212}},
                    "regimes": {"gw01": "CT_HEALTHY", "gw02": "CT_HEALTHY"},
                    "guard": "ceiling count > 50", "host": "gw02",
                    "reason": "guard: count on gw02 is 212 > 50"}),
]
MODELS = {"rollout": RolloutRecord, "wave_start": WaveStartRecord, "intent": IntentRecord,
          "outcome": OutcomeRecord, "wave_applied": WaveAppliedRecord,
          "wave_check": WaveCheckRecord}


def test_the_rollout_kinds_are_the_ones_added_after_version_1() -> None:
    added = set(NOT_IN_VERSION_1)
    assert added == {"rollout", "wave_start", "wave_applied", "wave_check"}
    assert added <= set(RECORD_TYPES)


def test_rollout_records_are_written_typed_and_read_back(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.jsonl", strict=True)
    for kind, fields in WRITTEN:
        j.write(kind, **fields)
    j.close()
    lines = [json.loads(x) for x in j.path.read_text().splitlines()]
    records = read_records(j.path, require_start=False)
    for (kind, fields), line, rec in zip(WRITTEN, lines, records, strict=True):
        assert type(rec) is MODELS[kind]
        assert {k: line[k] for k in fields} == fields  # written as given, nothing added
        assert set(line) == {"type", "v", "t", *fields}
        assert record_json(rec) == line


@pytest.mark.parametrize(("kind", "fields"), [
    ("wave_check", {"index": 0, "hosts": [], "passed": True, "settle_s": 0.1,
                    "peaks": {"gw01": {"count": "many"}}}),
    ("rollout", {"waves": [["gw01"]], "pause_s": 0.0}),
    ("wave_applied", {"index": 0, "hosts": ["gw01"], "apply_s": 1.0, "extra": 1}),
], ids=["peak-text", "no-watched", "undeclared"])
def test_the_writer_refuses_a_rollout_record_that_does_not_validate(
        tmp_path: Path, kind: str, fields: dict[str, Any]) -> None:
    j = Journal(tmp_path / "journal.jsonl", strict=True)
    with pytest.raises(RecordInvalid, match=f"'{kind}' record: "):
        j.write(kind, **fields)
    assert j.path.read_text() == ""


@pytest.mark.parametrize("data", [
    {"type": "wave_start", "index": "0", "hosts": ["gw01"]},
    {"type": "wave_check", "index": 0, "hosts": ["gw01"], "passed": "no", "settle_s": 0.1},
    {"type": "wave_applied", "index": 0, "hosts": "gw01", "apply_s": 1.0},
], ids=["index-text", "passed-text", "hosts-text"])
def test_a_read_rollout_record_is_checked_strictly(data: dict[str, Any]) -> None:
    with pytest.raises(RecordInvalid, match=f"'{data['type']}' record: "):
        parse_record(data)
