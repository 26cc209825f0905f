from __future__ import annotations

import json

import pytest

from ctdrill.telemetry.agent import parse_kmsg_record, parse_stat_table
from ctdrill.telemetry.protocol import Hello, ProtocolError, Sample, decode_line

STAT = """entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
00000064  00000000 00000000 00000000 00000000 00000000 00000000 00000002 00000000 00000000 000000c5 00000003 00000000  00000000 00000000 00000000 00000000
00000064  00000001 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000 00000010 00000000 00000000  00000000 00000000 00000000 00000000
"""


def test_stat_table_is_parsed_by_header_and_summed_per_cpu() -> None:
    stat = parse_stat_table(STAT)
    assert stat["drop"] == 0xC5 + 0x10
    assert stat["early_drop"] == 3
    assert stat["chainlength"] == 3
    assert stat["clashres"] == 1
    # entries is the namespace total repeated on every row, not a per-CPU counter
    assert stat["entries"] == 100


def test_stat_table_columns_are_not_positional() -> None:
    text = "drop entries\n00000001 00000005\n00000002 00000005\n"
    assert parse_stat_table(text) == {"drop": 3, "entries": 5}
    assert parse_stat_table("") == {}


def test_kmsg_record_parsing() -> None:
    rec = "4,1234,113542775,-;nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet\n"
    assert parse_kmsg_record(rec) == (
        113542775, "nf_conntrack: nf_conntrack: table full in netns 4026532177, dropping packet")
    assert parse_kmsg_record("garbage") is None
    assert parse_kmsg_record("4,x;msg") is None


def test_decode_hello_and_sample() -> None:
    hello = decode_line(json.dumps({"type": "hello", "agent": 1, "netns_inode": 7, "host": "h",
                                    "kmsg": True, "hz": 50, "conntrack": True}), 1.0)
    assert isinstance(hello, Hello) and hello.netns_inode == 7
    s = decode_line(json.dumps({"type": "sample", "seq": 3, "t": 2.5, "count": 10, "max": 20,
                                "buckets": 20, "stat": {"drop": 1},
                                "events": [{"kts_us": 5, "msg": "table full"}]}), 2.6)
    assert isinstance(s, Sample)
    assert (s.seq, s.count, s.received, s.events[0].kts_us) == (3, 10, 2.6, 5)
    assert s.to_json()["events"] == [{"kts_us": 5, "msg": "table full"}]


@pytest.mark.parametrize("line", ["", "{", '{"type": "sample"}', '{"type": "what"}', "[1]"])
def test_decode_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(ProtocolError):
        decode_line(line, 0.0)
