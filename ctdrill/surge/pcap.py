"""pcap replay: the new flows of a recorded episode, rewritten into the lab's addresses.

A flow's first packet (TCP SYN, the first UDP datagram of a 5-tuple, an ICMP echo
request) is what creates a conntrack entry, so that is what is replayed, at its
recorded time. Recorded client addresses map, in order of first appearance, onto the
surge's source addresses (wrapping); every destination becomes the surge's
destination; ports are kept, since port spread shapes the hash distribution.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ctdrill.errors import InvalidInput

MAX_FLOWS = 2_000_000
PROTO_CODES = {"udp": 0, "syn": 1, "icmp": 2}
FLOW_RECORD = struct.Struct("<dIHHB")


@dataclass(frozen=True)
class Packet:
    """What replay needs of one recorded IPv4 packet."""

    t: float
    proto: str  # "tcp", "udp", "icmp"
    src: str
    dst: str
    sport: int
    dport: int
    syn_only: bool = False
    echo_request: bool = False


@dataclass(frozen=True)
class Flow:
    t: float
    proto: str  # "syn", "udp", "icmp": the stage that starts it
    a: int
    p: int
    d: int


def new_flows(packets: Iterable[Packet]) -> list[tuple[float, str, str, int, int]]:
    """(t, stage, src, sport, dport) of each flow's first packet, in time order."""
    seen: set[tuple[str, str, str, int, int]] = set()
    out = []
    for pk in packets:
        if pk.proto == "tcp" and not pk.syn_only:
            continue
        if pk.proto == "icmp" and not pk.echo_request:
            continue
        key = (pk.proto, pk.src, pk.dst, pk.sport, pk.dport)
        if key in seen:
            continue
        seen.add(key)
        stage = {"tcp": "syn", "udp": "udp", "icmp": "icmp"}[pk.proto]
        out.append((pk.t, stage, pk.src, pk.sport, pk.dport))
    out.sort(key=lambda f: f[0])
    return out


def rewrite(flows: list[tuple[float, str, str, int, int]], src_start: int, src_count: int,
            speed: float = 1.0) -> list[Flow]:
    """Map recorded sources onto [src_start, src_start+src_count); times from 0, / speed."""
    if not flows:
        return []
    t0 = flows[0][0]
    index: dict[str, int] = {}
    out = []
    for t, stage, src, sport, dport in flows:
        k = index.setdefault(src, len(index))
        out.append(Flow((t - t0) / speed, stage, src_start + k % src_count, sport,
                        0 if stage == "icmp" else dport))
    return out


def read_packets(path: Path) -> list[Packet]:
    """IPv4 TCP/UDP/ICMP packets of a pcap (scapy's reader; other packets are skipped)."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.utils import PcapReader

    if not path.is_file():
        raise InvalidInput(f"pcap {path} does not exist", "check replay.pcap")
    out: list[Packet] = []
    try:
        with PcapReader(str(path)) as reader:
            for pkt in reader:
                ip = pkt.getlayer(IP)
                if ip is None:
                    continue
                t = float(pkt.time)
                if (tcp := ip.getlayer(TCP)) is not None:
                    flags = int(tcp.flags)
                    out.append(Packet(t, "tcp", ip.src, ip.dst, int(tcp.sport), int(tcp.dport),
                                      syn_only=(flags & 0x12) == 0x02))
                elif (udp := ip.getlayer(UDP)) is not None:
                    out.append(Packet(t, "udp", ip.src, ip.dst, int(udp.sport),
                                      int(udp.dport)))
                elif (icmp := ip.getlayer(ICMP)) is not None:
                    out.append(Packet(t, "icmp", ip.src, ip.dst, int(icmp.id), 0,
                                      echo_request=int(icmp.type) == 8))
                if len(out) > 4 * MAX_FLOWS:
                    break
    except (OSError, EOFError, ValueError, struct.error) as exc:
        raise InvalidInput(f"cannot read pcap {path}: {exc}",
                           "give a pcap (not pcapng) capture file") from None
    except Exception as exc:  # scapy raises its own types for a foreign file
        raise InvalidInput(f"{path} is not a readable pcap ({type(exc).__name__}: {exc})",
                           "give a pcap capture file") from None
    return out


def write_flows(path: Path, flows: list[Flow]) -> None:
    if len(flows) > MAX_FLOWS:
        raise InvalidInput(f"the pcap has {len(flows)} new flows",
                           f"replay at most {MAX_FLOWS}; cut the capture")
    path.write_bytes(b"".join(FLOW_RECORD.pack(f.t, f.a, f.p, f.d, PROTO_CODES[f.proto])
                              for f in flows))
