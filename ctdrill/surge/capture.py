"""Seeing the other end's handshake packets: a packet socket with a classic BPF filter.

When the client and the venue of an ASSURED surge are different hosts, neither can
forge the other's packets: the venue's handshake partner must see each SYN to answer
it, and the client must see each SYN-ACK before it sends the ACK (an ACK that reaches
the gateway before its SYN-ACK leaves the entry unconfirmed). Both read the packets
from a packet socket, which sees a frame before the host's nft ingress hook drops it
(the surge's silence table) when it is a tap (ETH_P_ALL), filtered in the kernel to
exactly the surge's packets.

Standard library only: this module is shipped to remote hosts (connect/payload.py).
"""

from __future__ import annotations

import ctypes
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

ETH_P_IP = 0x0800
ETH_P_ALL = 0x0003
"""All protocols: only such sockets are taps, which see a frame before the ingress hook;
a protocol-specific packet socket is served after it, like the IP stack."""
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
SNAP = 128
"""Bytes kept per frame: Ethernet + IPv4 (with options) + the TCP header's ports/flags."""

# classic BPF opcodes (linux/filter.h)
LD_W_ABS, LD_H_ABS, LD_B_ABS = 0x20, 0x28, 0x30
LD_H_IND, LD_B_IND = 0x48, 0x50
LDX_B_MSH = 0xB1
JEQ, JGE, JGT = 0x15, 0x35, 0x25
RET = 0x06
Insn = tuple[int, int, int, int]


@dataclass(frozen=True)
class Match:
    """One header field of an IPv4/TCP frame within [lo, hi] (inclusive)."""

    field: str  # ip_src, ip_dst, tcp_sport, tcp_dport, tcp_flags
    lo: int
    hi: int


FIELDS = {"ip_src": (LD_W_ABS, 26), "ip_dst": (LD_W_ABS, 30), "tcp_sport": (LD_H_IND, 14),
          "tcp_dport": (LD_H_IND, 16), "tcp_flags": (LD_B_IND, 27)}
"""How to load each field: absolute for IP (Ethernet 14 + offset), indirect for TCP
(X = the IP header length, from ldxb 4*([14]&0xf))."""


def program(matches: Sequence[Match]) -> list[Insn]:
    """The filter (pure): IPv4, TCP, every match, keep SNAP bytes; anything else 0."""
    body: list[tuple[int, int, str]] = [(LD_H_ABS, 12, ""), (JEQ, ETH_P_IP, "eq"),
                                        (LD_B_ABS, 23, ""), (JEQ, 6, "eq"),
                                        (LDX_B_MSH, 14, "")]
    for m in sorted(matches, key=lambda m: FIELDS[m.field][0] == LD_W_ABS, reverse=True):
        op, off = FIELDS[m.field]
        body.append((op, off, ""))
        if m.lo == m.hi:
            body.append((JEQ, m.lo, "eq"))
        else:
            body += [(JGE, m.lo, "eq"), (JGT, m.hi, "gt")]
    drop = len(body) + 1
    out: list[Insn] = []
    for i, (op, k, kind) in enumerate(body):
        skip = drop - i - 1
        if kind == "eq":  # true: go on; false: drop
            out.append((op, 0, skip, k))
        elif kind == "gt":  # true (above the range): drop
            out.append((op, skip, 0, k))
        else:
            out.append((op, 0, 0, k))
    return [*out, (RET, 0, 0, SNAP), (RET, 0, 0, 0)]


def attach(sock: socket.socket, insns: Sequence[Insn]) -> ctypes.Array[ctypes.c_char]:
    """Attach the filter (struct sock_fprog); the returned buffer must outlive the call."""
    code = b"".join(struct.pack("HBBI", *i) for i in insns)
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(insns), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    return buf


class Capture:
    """A non-blocking packet socket on one interface that only sees matching frames."""

    def __init__(self, ifname: str, matches: Sequence[Match]) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._keep = attach(self.sock, program(matches))
        try:  # past rmem_max (root): a burst of SYNs must not overflow the queue
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)
        except PermissionError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((ifname, ETH_P_ALL))
        self.sock.setblocking(False)
        self.buf = bytearray(SNAP)
        self.seen = 0
        self.last()  # frames queued before the filter was attached
        self.seen = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def last(self) -> tuple[int, int, int, int] | None:
        """Drain the queue; the (src, dst, sport, dport) of its last frame only. With a
        filter that admits one sender's flows, the last is all a partner needs to know
        (they arrive in order), and a frame then costs one recv, not a parse."""
        buf, recv = self.buf, self.sock.recv_into
        got = 0
        while True:
            try:
                n = recv(buf, SNAP)
            except BlockingIOError:
                break
            if n >= 34:
                got = n
                self.seen += 1
        if not got:
            return None
        l4 = 14 + 4 * (buf[14] & 0x0F)
        src, dst = struct.unpack_from("!II", buf, 26)
        sport, dport = struct.unpack_from("!HH", buf, l4)
        return src, dst, sport, dport

    def close(self) -> None:
        self.sock.close()
