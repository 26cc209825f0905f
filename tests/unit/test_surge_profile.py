"""Replay profiles: the common export formats parse; bad files say where and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctdrill.surge.profile import ProfileError, load_profile, parse_csv, parse_json, parse_profile


def test_csv_with_header_and_comments() -> None:
    text = "# exported from grafana\ntime,flows_per_s\n0,100\n1,250.5\n\n2,0\n"
    assert parse_csv(text) == [(0, 100), (1, 250.5), (2, 0)]


def test_csv_header_in_any_column_order() -> None:
    assert parse_csv("rate,host,t\n5,a,0\n7,b,1\n") == [(0, 5), (1, 7)]


def test_csv_without_header() -> None:
    assert parse_profile("0, 10\n0.5, 20\n") == [(0, 10), (0.5, 20)]


def test_json_forms() -> None:
    assert parse_json("[[0, 1], [1, 2]]") == [(0, 1), (1, 2)]
    assert parse_json('[{"t": 0, "rate": 3}, {"time": 2, "flows_per_s": 4}]') == [(0, 3), (2, 4)]
    assert parse_profile('{"points": [[0, 9]]}') == [(0, 9)]


@pytest.mark.parametrize(("text", "match"), [
    ("", "no rows"),
    ("t,rate\n", "no rows"),
    ("0,10\n1,abc\n", "profile:2: rate 'abc' is not a number"),
    ("0,10\n0,20\n", "profile:2: time 0 is not after"),
    ("0,10\n1,-5\n", "profile:2: rate -5 out of range"),
    ("0,nan\n", "not finite"),
    ("when,how\n0,1\n", "names no time and rate columns"),
    ("0\n", "expected 2 columns"),
    ("[[0, 1], [1]]", r"profile\[1\]: expected \[t, rate\]"),
    ("[[0, 1], {\"x\": 1}]", "has no time or rate"),
    ("[[0, 1]", "not valid JSON"),
    ('{"a": 1}', "expected a list of rows"),
    ("[[0, true]]", "is not a number"),
])
def test_bad_profiles_are_refused_with_a_position(text: str, match: str) -> None:
    with pytest.raises(ProfileError, match=match):
        parse_profile(text)


def test_load_profile_reads_files_and_names_them(tmp_path: Path) -> None:
    good = tmp_path / "p.csv"
    good.write_text("t,rate\n0,1\n")
    assert load_profile(good) == [(0, 1)]
    bad = tmp_path / "bad.csv"
    bad.write_text("0,1\nx,2\n")
    with pytest.raises(ProfileError, match=r"bad.csv:2: time 'x'"):
        load_profile(bad)
    with pytest.raises(ProfileError, match="cannot read profile"):
        load_profile(tmp_path / "absent.csv")
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ProfileError, match="not UTF-8"):
        load_profile(binary)
