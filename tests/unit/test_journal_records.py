"""Typed journal records: every kind the engine writes has a model; version-1 journals
(every fixture: real runs, and one written by the version-1 writer with the kinds the
real runs lack) read into those models, round-trip, and give the same report and
recovery plan as before records were typed; the writer validates what it writes and
writes only declared fields; the event stream survives its handlers."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ctdrill.engine.recover import recovery_plan
from ctdrill.errors import InvalidInput
from ctdrill.journal import (
    RECORD_TYPES,
    SCHEMA_VERSION,
    InvalidRecord,
    Journal,
    JournalWriteFailed,
    Record,
    RecordInvalid,
    UnknownRecord,
    parse_record,
    read_journal,
    read_records,
)
from ctdrill.journal.records import (
    NOT_IN_VERSION_1,
    AbortRecord,
    LockedRecord,
    RecordModel,
    SamplesRecord,
    TransitionRecord,
    record_json,
)
from ctdrill.journal.writer import STRICT_ENV
from ctdrill.report import build_report
from ctdrill.surge.profile import load_profile
from ctdrill.telemetry.protocol import Sample, SlabInfo
from tests.unit.test_journal import enospc_after

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = FIXTURES / "v1-expected"
PROFILE = ROOT / "drills" / "profiles" / "pressure-episode.csv"
V1 = sorted(p.stem for p in FIXTURES.glob("*.jsonl"))

KEYWORD_WRITE = re.compile(r'\b(?:write|try_write|note)\(\s*(f?)"([a-z_{}]+)"')
TYPED_EMIT = re.compile(r"\b(?:emit|try_emit)\(\s*([A-Z][A-Za-z]*Record)\(")
PHASES = ("load", "probe")
"""What `{kind}` stands for in the observation's f"{kind}_start" / f"{kind}_end"."""


def engine_kinds() -> set[str]:
    """Every record kind written anywhere in ctdrill/, by keyword or as a typed record."""
    by_class = {cls.__name__: kind for kind, cls in RECORD_TYPES.items()}
    found: set[str] = set()
    for path in (ROOT / "ctdrill").rglob("*.py"):
        text = path.read_text()
        for templated, kind in KEYWORD_WRITE.findall(text):
            found |= ({re.sub(r"\{[a-z_]+\}", p, kind) for p in PHASES} if templated
                      else {kind})
        found |= {by_class.get(name, name) for name in TYPED_EMIT.findall(text)}
    return found


def fixture(name: str) -> Path:
    return FIXTURES / f"{name}.jsonl"


def raw(name: str) -> list[dict[str, Any]]:
    return read_journal(fixture(name))


def plain(value: Any) -> Any:
    """JSON values only (tuples -> lists), as the expected files hold them."""
    return json.loads(json.dumps(value))


def outputs(records: list[Any], name: str) -> dict[str, Any]:
    """What readers make of a journal: the report (whole) and the recovery plan."""
    profile = load_profile(PROFILE) if name.startswith("table-pressure") else None
    r = build_report(records, journal=f"/runs/{name}/journal.jsonl", profile=profile)
    rp = recovery_plan(records)
    doc: dict[str, Any] = plain({
        "report": dataclasses.asdict(r), "passed": r.passed,
        "revert_verified": r.revert_verified, "summary": r.summary_json(),
        "recovery_plan": {**dataclasses.asdict(rp), "inventory": str(rp.inventory)}})
    return doc


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            found = (f"{path}.{k} missing" if k not in a or k not in b
                     else first_difference(a[k], b[k], f"{path}.{k}"))
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next((d for i, (x, y) in enumerate(zip(a, b, strict=True))
                     if (d := first_difference(x, y, f"{path}[{i}]"))), None)
    return None if a == b else f"{path}: {a!r:.80} != {b!r:.80}"


def rewrite(name: str, path: Path) -> Path:
    """The fixture's records written again by today's writer (strict), times kept."""
    j = Journal(path, strict=True)
    for rec in raw(name):
        j.write(rec["type"], **{k: v for k, v in rec.items() if k != "type"})
    j.close()
    return path


# ------------------------------------------------------------------ every kind

def test_every_kind_the_engine_writes_has_a_model_and_no_model_is_stale() -> None:
    kinds = engine_kinds()
    assert len(kinds) >= 25, kinds  # the scan found the call sites
    assert kinds - set(RECORD_TYPES) == set(), "a kind without a model in journal/records.py"
    # `reopened` is written by the journal itself when it opens a torn file
    assert set(RECORD_TYPES) - kinds == {"reopened"}


def test_every_kind_is_in_a_version_1_fixture_and_reads_as_its_model() -> None:
    seen: set[str] = set()
    for name in V1:
        for d, rec in zip(raw(name), read_records(fixture(name)), strict=True):
            assert type(rec) is RECORD_TYPES[d["type"]], d["type"]
            assert rec.v == 1 and "v" not in d
            seen.add(d["type"])
    assert seen == set(RECORD_TYPES) - NOT_IN_VERSION_1


@pytest.mark.parametrize("name", V1)
def test_version_1_records_round_trip(name: str) -> None:
    for d in raw(name):
        rec = parse_record(d)
        assert record_json(rec) == {"v": 1, **d}
        assert parse_record(record_json(rec)) == rec


@pytest.mark.parametrize("name", V1)
def test_todays_writer_writes_the_same_records_with_their_version(
        name: str, tmp_path: Path) -> None:
    path = rewrite(name, tmp_path / "journal.jsonl")
    for old, new in zip(raw(name), read_journal(path), strict=True):
        assert new == {**old, "v": SCHEMA_VERSION}
    for old_rec, new_rec in zip(read_records(fixture(name)), read_records(path), strict=True):
        assert new_rec == old_rec.model_copy(update={"v": SCHEMA_VERSION})


# ------------------------------------------------------------------ readers unchanged

@pytest.mark.parametrize("name", V1)
def test_a_version_1_journal_gives_the_same_report_and_recovery_plan(
        name: str, tmp_path: Path) -> None:
    """The expected files were made by the untyped readers (report/build.py and
    engine/recover.py before records were typed) from these same journals."""
    expected = json.loads((EXPECTED / f"{name}.json").read_text())
    for records in (raw(name), read_records(fixture(name)),
                    read_records(rewrite(name, tmp_path / "journal.jsonl"))):
        got = outputs(records, name)
        assert got == expected, first_difference(got, expected)


# ------------------------------------------------------------------ the slab cache

def _samples_of(records: list[Any]) -> list[Any]:
    return [e for r in records if isinstance(r, SamplesRecord) for e in r.samples]


def test_version_1_samples_have_no_slab_and_keep_their_fields() -> None:
    entries = [e for name in V1 for e in _samples_of(read_records(fixture(name)))]
    assert entries and all(e.sample.slab is None for e in entries)
    assert all("slab" not in record_json(r)["samples"][0]["sample"]
               for name in V1 for r in read_records(fixture(name))
               if isinstance(r, SamplesRecord))


def test_a_sample_with_its_slab_is_written_typed_and_read_back(tmp_path: Path) -> None:
    slab = SlabInfo(active_objs=178, num_objs=240, objsize=256, objperslab=16,
                    pagesperslab=1)
    read = Sample(seq=4, t=1795683580.5, received=1795683580.6, count=9, max=10,
                  buckets=10, stat={"drop": 2}, slab=slab)
    unread = replace(read, seq=5, t=1795683581.5, slab=None)  # agent without root
    j = Journal(tmp_path / "j.jsonl", strict=True)
    j.write("samples", host="gw", samples=[{"sample": read.to_json()},
                                            {"sample": unread.to_json()}])
    j.close()
    (line,) = lines(j.path)
    assert line["samples"][0]["sample"]["slab"] == {
        "active_objs": 178, "num_objs": 240, "objsize": 256, "objperslab": 16,
        "pagesperslab": 1, "bytes": 61440}
    first, second = _samples_of(read_records(j.path, require_start=False))
    assert first.sample.slab is not None and second.sample.slab is None
    assert (first.sample.slab.num_objs, first.sample.slab.bytes, first.sample.t) == (
        240, 61440, 1795683580.5)
    assert first.sample.model_extra["count"] == 9  # the rest of the sample kept whole
    (rec,) = read_records(j.path, require_start=False)
    assert record_json(rec) == line


def test_a_malformed_slab_makes_the_samples_record_invalid() -> None:
    bad = {"type": "samples", "host": "gw", "samples": [{"sample": {
        "t": 1.0, "slab": {"active_objs": 1, "num_objs": "240", "objsize": 256,
                           "objperslab": 16, "pagesperslab": 1}}}]}
    with pytest.raises(RecordInvalid, match="'samples' record: "):
        parse_record(bad)


# ------------------------------------------------------------------ parsing

def test_an_unknown_kind_is_kept_whole_and_a_newer_writers_fields_are_tolerated() -> None:
    rec = parse_record({"type": "from_the_future", "v": 9, "t": 5.0, "x": [1]})
    assert type(rec) is UnknownRecord and rec.kind == "from_the_future"
    assert rec.v == 9 and rec.t == 5.0 and rec.model_extra == {"x": [1]}
    newer = parse_record({"type": "locked", "v": 3, "t": 1.0, "hosts": ["gw"], "why": "new"})
    assert isinstance(newer, LockedRecord) and newer.hosts == ["gw"]
    assert newer.model_extra == {"why": "new"}


@pytest.mark.parametrize("data", [
    {"type": "locked"},
    {"type": "locked", "hosts": "gw"},
    {"type": "verdict", "name": "x", "passed": "yes", "observed": 1},  # no coercion
    {"type": "end", "exit_code": "0"},
    {"type": "start", "run_id": "r", "t": "yesterday"},
], ids=["missing", "wrong-type", "bool-from-text", "int-from-text", "bad-time"])
def test_a_known_kind_that_does_not_validate_raises_or_is_kept_as_invalid(
        data: dict[str, Any]) -> None:
    with pytest.raises(RecordInvalid, match=f"'{data['type']}' record: ") as info:
        parse_record(data)
    assert "\n" not in str(info.value)
    rec = parse_record(data, lenient=True)
    assert isinstance(rec, InvalidRecord) and rec.kind == data["type"]
    assert rec.problem == str(info.value)
    assert rec.t is None or isinstance(rec.t, float)


def test_a_record_whose_fields_shadow_the_models_own_is_still_kept() -> None:
    data = {"type": "verdict", "kind": 1, "problem": 2, "_fields_set": 3, "x": 4}
    rec = parse_record(data, lenient=True)
    assert isinstance(rec, InvalidRecord) and rec.kind == "verdict"
    assert rec.problem.startswith("'verdict' record: ") and rec.model_extra == {"x": 4}
    unknown = parse_record({**data, "type": "newer", "t": "x"})
    assert type(unknown) is UnknownRecord and unknown.kind == "newer" and unknown.t is None


@pytest.mark.parametrize("data", [[1], "start", {"run_id": "r"}, {"type": 3}])
def test_what_is_not_a_record_at_all(data: Any) -> None:
    with pytest.raises(RecordInvalid, match="not a journal record"):
        parse_record(data)
    assert isinstance(parse_record(data, lenient=True), InvalidRecord)


def test_a_record_that_does_not_validate_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text(json.dumps({"type": "start", "run_id": "r"}) + "\n"
                    + json.dumps({"type": "snapshot", "host": "gw"}) + "\n")
    with pytest.raises(InvalidInput, match=r"line 2: 'snapshot' record: snapshot: "):
        read_records(path)
    kinds = [type(r).__name__ for r in read_records(path, lenient=True)]
    assert kinds == ["StartRecord", "InvalidRecord"]


# ------------------------------------------------------------------ the writer

def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_write_validates_and_writes_declared_fields_only(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl", strict=False)
    with pytest.raises(RecordInvalid, match="undeclared field"):
        j.write("abort", reason="x", note="extra")
    with pytest.raises(RecordInvalid, match="'verdict' record: observed"):
        j.write("verdict", name="x", passed=True, observed="high", detail="")
    with pytest.raises(RecordInvalid, match="no record kind 'nope'"):
        j.write("nope")
    with pytest.raises(RecordInvalid, match="undeclared field"):
        j.emit(AbortRecord.model_validate({"reason": "x", "note": "extra"}))
    assert lines(j.path) == []  # nothing of a bad record reached the file
    written = j.emit(AbortRecord(reason="guard"))
    assert written.t is not None and written.v == SCHEMA_VERSION
    (line,) = lines(j.path)
    assert line == {"type": "abort", "v": SCHEMA_VERSION, "t": written.t, "reason": "guard"}


def test_a_record_that_carries_its_own_time_keeps_it(tmp_path: Path) -> None:
    (d,) = [r for r in raw("capacity-step") if r["type"] == "transition"][:1]
    j = Journal(tmp_path / "j.jsonl", strict=True)
    rec = j.emit(parse_record(d))
    assert isinstance(rec, TransitionRecord) and rec.t == d["t"]
    assert lines(j.path)[0]["t"] == d["t"]


def test_try_write_never_blocks_the_revert_unless_strict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STRICT_ENV, raising=False)
    j = Journal(tmp_path / "j.jsonl")
    assert not j.strict
    assert j.try_write("revert", host="gw", verified="maybe") is True
    assert j.invalid == 1
    (line,) = lines(j.path)  # the evidence is kept, as given
    assert line["type"] == "revert" and line["verified"] == "maybe"
    (rec,) = read_records(j.path, lenient=True, require_start=False)
    assert isinstance(rec, InvalidRecord) and "verified" in rec.problem
    monkeypatch.setenv(STRICT_ENV, "1")
    strict = Journal(tmp_path / "k.jsonl")
    assert strict.strict
    with pytest.raises(RecordInvalid):
        strict.try_write("revert", host="gw", verified="maybe")


# ------------------------------------------------------------------ the event stream



def test_subscribers_get_each_record_once_it_is_on_disk(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl", strict=True)
    seen: list[tuple[Record, dict[str, Any]]] = []
    unsubscribe = j.subscribe(lambda rec: seen.append((rec, lines(j.path)[-1])))
    j.write("start", run_id="r1", inventory="/inv")
    j.emit(LockedRecord(hosts=["gw"]))
    unsubscribe()
    j.write("end", exit_code=0)
    assert [type(rec).__name__ for rec, _ in seen] == ["StartRecord", "LockedRecord"]
    for rec, on_disk in seen:
        assert isinstance(rec, RecordModel) and record_json(rec) == on_disk


def test_a_failing_subscriber_is_dropped_and_stops_nothing(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl", strict=True)
    calls: list[str] = []

    def broken(rec: Record) -> None:
        calls.append("broken")
        raise RuntimeError("display bug")
    j.subscribe(broken)
    j.subscribe(lambda rec: calls.append(str(getattr(rec, "kind", ""))))
    j.write("start", run_id="r1", inventory="/inv")
    assert j.try_write("reverting", hosts=["gw"])
    assert calls == ["broken", "start", "reverting"]
    assert len(j.handler_errors) == 1 and "display bug" in j.handler_errors[0]
    assert [r["type"] for r in lines(j.path)] == ["start", "reverting"]


def test_subscribers_hear_of_records_the_disk_refused(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl", write=enospc_after(10), strict=True)
    seen: list[str] = []
    j.subscribe(lambda rec: seen.append(str(getattr(rec, "kind", ""))))
    with pytest.raises(JournalWriteFailed):
        j.write("start", run_id="r1", inventory="/inv")
    assert j.try_write("abort", reason="disk full") is False
    assert seen == ["start", "abort"] and j.dropped == 2
