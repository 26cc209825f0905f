"""Frames: every generated frame parses in scapy with the checksums scapy itself computes,
and the flow spaces give every packet its own 5-tuple."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from ctdrill.surge.flowspace import Dim, FlowSpace
from ctdrill.surge.frames import RowWriter, Template, checksum, frame_for, ones_sum
from ctdrill.surge.templates import CLIENT_ISN, SERVER_ISN, Link, build_template

LINK = Link("eth0", "02:00:00:00:00:01", "02:00:00:00:00:02")
A0 = int(ipaddress.IPv4Address("10.77.0.2"))
SERVER = "10.78.0.2"
STAGES = ["udp", "syn", "synack", "ack", "rst", "icmp"]


def scapy_checksums_agree(frame: bytes) -> bool:
    """Our checksums equal the ones scapy computes for the same headers."""
    pkt = Ether(frame)
    ip, l4 = pkt[IP], pkt[IP].payload
    ours = (ip.chksum, l4.chksum)
    del ip.chksum
    del l4.chksum
    again = Ether(bytes(pkt))
    return ours == (again[IP].chksum, again[IP].payload.chksum)


def tuple_of(frame: bytes, stage: str) -> tuple[int, int, int]:
    pkt = Ether(frame)
    ip = pkt[IP]
    if stage == "icmp":
        return int(ipaddress.IPv4Address(ip.src)), pkt[ICMP].id, 0
    l4 = ip.payload
    if stage == "synack":
        return int(ipaddress.IPv4Address(ip.dst)), l4.dport, l4.sport
    return int(ipaddress.IPv4Address(ip.src)), l4.sport, l4.dport


SPACES = [
    FlowSpace(Dim(A0, 1), Dim(1024, 64512), Dim(10000, 3)),  # rows over source ports
    FlowSpace(Dim(A0, 300), Dim(1024, 5), Dim(10000, 7)),  # rows over addresses
    FlowSpace(Dim(A0, 2), Dim(7, 1), Dim(1, 65535)),  # rows over destination ports
]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("space", SPACES, ids=["p", "a", "d"])
def test_rows_have_valid_checksums_and_the_right_tuples(stage: str, space: FlowSpace) -> None:
    if stage == "icmp":
        space = FlowSpace(space.a, space.p, Dim(0, 1))
    t = build_template(stage, LINK, A0, SERVER, space.p.start, space.d.start)
    writer = RowWriter(t, space)
    size = len(t.frame)
    rng = random.Random(stage)
    for row in {0, 1, space.rows // 2, space.rows - 1}:
        buf = bytearray(size * writer.n)
        writer.write(buf, 0, row)
        for k in rng.sample(range(writer.n), min(writer.n, 25)):
            frame = bytes(buf[k * size:(k + 1) * size])
            assert scapy_checksums_agree(frame), (stage, row, k)
            a, p, d = space.flow(row * writer.n + k)
            assert tuple_of(frame, stage) == (a, p, 0 if stage == "icmp" else d)


def test_handshake_frames_carry_the_fixed_sequence_numbers() -> None:
    syn, synack, ack = (Ether(build_template(s, LINK, A0, SERVER, 5000, 10000).frame)[TCP]
                        for s in ("syn", "synack", "ack"))
    assert (syn.flags, syn.seq) == ("S", CLIENT_ISN)
    assert (synack.flags, synack.seq, synack.ack) == ("SA", SERVER_ISN, CLIENT_ISN + 1)
    assert (ack.flags, ack.seq, ack.ack) == ("A", CLIENT_ISN + 1, SERVER_ISN + 1)
    assert synack.urgptr == 0 and not (int(synack.flags) & 0x20)  # no URG: urgptr is free


@given(st.sampled_from(STAGES), st.integers(A0, A0 + 65535), st.integers(1, 65535),
       st.integers(1, 65535))
@settings(max_examples=60, deadline=None)
def test_single_frames_for_any_flow(stage: str, a: int, p: int, d: int) -> None:
    t = TEMPLATES[stage]
    frame = frame_for(t, a, p, d)
    assert scapy_checksums_agree(frame)
    assert tuple_of(frame, stage) == (a, p, 0 if stage == "icmp" else d)


TEMPLATES = {s: build_template(s, LINK, A0, SERVER, 1024, 10000) for s in STAGES}


def test_udp_zero_checksum_is_sent_as_ffff() -> None:
    t = TEMPLATES["udp"]
    c0 = int.from_bytes(t.frame[t.l4_csum:t.l4_csum + 2], "big") % 0xFFFF
    p = (c0 + t.base["p"]) % 0xFFFF or 0xFFFF  # the port whose checksum comes out zero
    frame = frame_for(t, A0, p, 10000)
    assert Ether(frame)[UDP].chksum == 0xFFFF  # RFC 768: zero is sent as all ones
    assert scapy_checksums_agree(frame)


def test_template_json_round_trip() -> None:
    t = TEMPLATES["synack"]
    assert Template.from_json(t.to_json()) == t


def test_checksum_helpers_match_rfc1071_example() -> None:
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ones_sum(data) == 0xDDF2
    assert checksum(data) == 0x220D
    assert checksum(bytes(IP(src="10.0.0.1", dst="10.0.0.2"))) == 0  # valid header


def test_flow_space_enumerates_every_tuple_once() -> None:
    space = FlowSpace(Dim(A0, 3), Dim(1000, 7), Dim(20, 5))
    flows = list(space.flows(space.size))
    assert len(set(flows)) == space.size == 105
    assert space.flow(space.size) == flows[0]  # wraps


@given(st.integers(1, 12), st.integers(1, 200), st.integers(1, 12), st.integers(1, 8))
@settings(deadline=None)
def test_split_is_disjoint_and_complete(na: int, np_: int, nd: int, k: int) -> None:
    space = FlowSpace(Dim(A0, na), Dim(1, np_), Dim(100, nd))
    parts = space.split(k)
    assert 1 <= len(parts) <= k
    assert sum(p.size for p in parts) == space.size
    seen: set[tuple[int, int, int]] = set()
    for part in parts:
        mine = set(part.flows(part.size))
        assert not mine & seen
        seen |= mine
    assert len(seen) == space.size


def test_worker_sources_fill_rings_with_the_enumerated_flows() -> None:
    from ctdrill.surge.worker import ExplicitSource, RowSource

    space = FlowSpace(Dim(A0, 2), Dim(1000, 3), Dim(20, 5000))
    t = build_template("syn", LINK, A0, SERVER, 1000, 20)
    src = RowSource([t, TEMPLATES["ack"]], space)
    laps = space.rows // src.rows_per_fill + 2  # more than the whole space: wraps
    for j in range(laps):
        n = src.refill()
        assert n == src.rows_per_fill * space.row_len
        for k in range(0, n, 997):
            expect = space.flow((j * n + k) % space.size)
            for ring, stage in zip(src.rings, ("syn", "ack"), strict=True):
                fs = ring.frame_size
                assert tuple_of(bytes(ring.buf[k * fs:(k + 1) * fs]), stage) == expect
    explicit = ExplicitSource(TEMPLATES, [("udp", A0, 5, 6), ("icmp", A0 + 1, 7, 0)])
    assert explicit.refill() == 2 and explicit.refill() == 0
    ring = explicit.rings[0]
    udp = bytes(ring.buf[:len(TEMPLATES["udp"].frame)])
    assert tuple_of(udp, "udp") == (A0, 5, 6) and scapy_checksums_agree(udp)
