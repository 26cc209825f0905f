"""pcap replay: each flow's first packet, at its time, moved into the lab's addresses."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from ctdrill.errors import InvalidInput
from ctdrill.surge.pcap import FLOW_RECORD, Packet, new_flows, read_packets, rewrite, write_flows

A0 = int(ipaddress.IPv4Address("10.77.0.2"))


def test_first_packets_only() -> None:
    pk = [Packet(1.0, "tcp", "1.1.1.1", "2.2.2.2", 5, 80, syn_only=True),
          Packet(1.1, "tcp", "2.2.2.2", "1.1.1.1", 80, 5),  # SYN-ACK / data: not new
          Packet(1.2, "udp", "1.1.1.1", "2.2.2.2", 6, 53),
          Packet(1.3, "udp", "1.1.1.1", "2.2.2.2", 6, 53),  # same 5-tuple
          Packet(0.5, "icmp", "3.3.3.3", "2.2.2.2", 9, 0, echo_request=True),
          Packet(1.4, "icmp", "2.2.2.2", "3.3.3.3", 9, 0)]  # echo reply
    flows = new_flows(pk)
    assert [(f[0], f[1]) for f in flows] == [(0.5, "icmp"), (1.0, "syn"), (1.2, "udp")]


def test_rewrite_maps_sources_in_order_and_speeds_up() -> None:
    flows = [(10.0, "udp", "9.9.9.9", 1, 2), (11.0, "syn", "8.8.8.8", 3, 4),
             (12.0, "udp", "9.9.9.9", 5, 6), (14.0, "icmp", "7.7.7.7", 7, 99)]
    out = rewrite(flows, A0, 2, speed=2.0)
    assert [f.t for f in out] == [0, 0.5, 1.0, 2.0]
    assert [f.a - A0 for f in out] == [0, 1, 0, 0]  # third source wraps onto the first
    assert (out[3].p, out[3].d) == (7, 0)
    assert rewrite([], A0, 1) == []


def test_read_a_real_pcap_and_write_records(tmp_path: Path) -> None:
    pkts = [Ether() / IP(src="192.168.1.5", dst="172.16.0.1") / TCP(sport=40000, dport=443,
                                                                     flags="S"),
            Ether() / IP(src="172.16.0.1", dst="192.168.1.5") / TCP(sport=443, dport=40000,
                                                                     flags="SA"),
            Ether() / IP(src="192.168.1.6", dst="172.16.0.1") / UDP(sport=5000, dport=53),
            Ether() / IP(src="192.168.1.6", dst="172.16.0.1") / ICMP(type=8, id=77)]
    for i, p in enumerate(pkts):
        p.time = 100 + i * 0.25
    path = tmp_path / "cap.pcap"
    wrpcap(str(path), pkts)
    flows = rewrite(new_flows(read_packets(path)), A0, 4)
    assert [(f.proto, f.t, f.a - A0, f.p, f.d) for f in flows] == [
        ("syn", 0.0, 0, 40000, 443), ("udp", 0.5, 1, 5000, 53), ("icmp", 0.75, 1, 77, 0)]
    out = tmp_path / "flows.bin"
    write_flows(out, flows)
    assert [r[4] for r in FLOW_RECORD.iter_unpack(out.read_bytes())] == [1, 0, 2]


def test_unreadable_pcaps_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        read_packets(tmp_path / "none.pcap")
    junk = tmp_path / "junk.pcap"
    junk.write_text("this is not a capture")
    with pytest.raises(InvalidInput, match="pcap"):
        read_packets(junk)
