"""Packet templates crafted with scapy: one frame per packet kind, bytes and offsets.

scapy is the reference for what a correct frame is (headers, options, checksums), but
at ~1.4k packets/s it is far too slow to send with; it builds one frame per kind here
and frames.py derives millions from it. Imported lazily: scapy takes ~1 s to import.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ctdrill.surge.frames import Template

CLIENT_ISN = 0x43540000
"""Fixed initial sequence numbers of ASSURED handshakes: frames are prebuilt, and the
SYN-ACK's ack and the ACK's seq/ack follow from them."""
SERVER_ISN = 0x53560000
PAYLOAD = b"ctds"
STAGES = ("udp", "syn", "icmp", "synack", "ack", "rst")


@dataclass(frozen=True)
class Link:
    """The Ethernet hop a frame is written onto: our interface and the next hop's MAC."""

    ifname: str
    src_mac: str
    dst_mac: str


def build_template(stage: str, link: Link, client: int, server: str, p0: int,
                   d0: int) -> Template:
    """The template frame of one stage for flow (client, p0, d0) towards `server`."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    caddr = str(ipaddress.IPv4Address(client))
    ether = Ether(src=link.src_mac, dst=link.dst_mac)
    forward = IP(src=caddr, dst=server, id=0, ttl=64)
    reverse = IP(src=server, dst=caddr, id=0, ttl=64)
    mss = [("MSS", 1460)]
    if stage == "udp":
        pkt = ether / forward / UDP(sport=p0, dport=d0) / Raw(b"\0\0" + PAYLOAD)
    elif stage == "syn":
        pkt = ether / forward / TCP(sport=p0, dport=d0, flags="S", seq=CLIENT_ISN,
                                    window=64240, options=mss, urgptr=0)
    elif stage == "synack":
        pkt = ether / reverse / TCP(sport=d0, dport=p0, flags="SA", seq=SERVER_ISN,
                                    ack=CLIENT_ISN + 1, window=65160, options=mss, urgptr=0)
    elif stage == "ack":
        pkt = ether / forward / TCP(sport=p0, dport=d0, flags="A", seq=CLIENT_ISN + 1,
                                    ack=SERVER_ISN + 1, window=502, urgptr=0)
    elif stage == "rst":
        pkt = ether / forward / TCP(sport=p0, dport=d0, flags="R", seq=CLIENT_ISN + 1,
                                    window=0, urgptr=0)
    elif stage == "icmp":
        pkt = ether / forward / ICMP(type=8, code=0, id=p0, seq=0) / Raw(PAYLOAD)
    else:
        raise ValueError(f"unknown stage {stage!r}")
    frame = bytes(pkt)
    ip = len(ether)
    l4 = ip + 4 * (frame[ip] & 0x0F)
    a_off = ip + (16 if stage == "synack" else 12)
    if stage == "icmp":
        fields = {"a": (a_off, 4), "p": (l4 + 4, 2)}
        return Template(stage, frame, fields, ip_csum=ip + 10, ip_comp=ip + 4,
                        l4_csum=l4 + 2, l4_comp=l4 + 6, ip_covers=frozenset("a"),
                        l4_covers=frozenset("p"), base={"a": client, "p": p0, "d": d0})
    sport, dport = (l4 + 2, l4) if stage == "synack" else (l4, l4 + 2)
    fields = {"a": (a_off, 4), "p": (sport, 2), "d": (dport, 2)}
    if stage == "udp":
        csum, comp = l4 + 6, l4 + 8
    else:
        csum, comp = l4 + 16, l4 + 18
    return Template(stage, frame, fields, ip_csum=ip + 10, ip_comp=ip + 4, l4_csum=csum,
                    l4_comp=comp, ip_covers=frozenset("a"), l4_covers=frozenset("apd"),
                    base={"a": client, "p": p0, "d": d0}, udp=stage == "udp")
