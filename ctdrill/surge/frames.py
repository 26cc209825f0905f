"""Frame templates and fast row generation (pure bytes arithmetic, no scapy here).

scapy builds one template frame per packet kind (templates.py); this module turns a
template into many frames without scapy and without per-packet Python in the send path:

- a *base row* (all values of one flow dimension, the others fixed) is built once,
  with each frame's IP and L4 checksum adjusted incrementally (RFC 1624 arithmetic);
- every other row is the base row copied, with its fixed fields rewritten as constant
  byte columns (strided slice assignment runs in C) and two *compensation words* set
  so that every checksum stays valid without touching it: the IPv4 id absorbs the
  address change in the IP header checksum, and a word outside the conntrack tuple
  (UDP payload, TCP urgent pointer without URG, ICMP echo sequence) absorbs the
  change in the L4 checksum. One's complement sums are sums modulo 0xFFFF, so adding
  the negated change restores the old sum exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ctdrill.surge.flowspace import FlowSpace

M = 0xFFFF


def ones_sum(data: bytes) -> int:
    """One's complement sum of 16-bit big-endian words, folded (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & M) + (s >> 16)
    return s


def checksum(data: bytes) -> int:
    return ~ones_sum(data) & M


def words(value: int, width: int) -> int:
    """Sum of the 16-bit words of a 2- or 4-byte field value."""
    return value if width == 2 else (value >> 16) + (value & M)


@dataclass(frozen=True)
class Template:
    """One frame and where the flow's fields, checksums and compensation words live.

    `fields` maps a flow dimension (a: client address, p: client port or echo id,
    d: server port) to (offset, width). `ip_covers`/`l4_covers` say which dimensions
    each checksum covers (the address is in TCP/UDP's pseudo-header, not ICMP's).
    `base` holds the flow the frame was built for.
    """

    name: str
    frame: bytes
    fields: dict[str, tuple[int, int]]
    ip_csum: int
    ip_comp: int
    l4_csum: int
    l4_comp: int
    ip_covers: frozenset[str]
    l4_covers: frozenset[str]
    base: dict[str, int]
    udp: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "frame": self.frame.hex(),
                "fields": {k: list(v) for k, v in self.fields.items()},
                "ip_csum": self.ip_csum, "ip_comp": self.ip_comp, "l4_csum": self.l4_csum,
                "l4_comp": self.l4_comp, "ip_covers": sorted(self.ip_covers),
                "l4_covers": sorted(self.l4_covers), "base": self.base, "udp": self.udp}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Template:
        return cls(name=d["name"], frame=bytes.fromhex(d["frame"]),
                   fields={k: (int(v[0]), int(v[1])) for k, v in d["fields"].items()},
                   ip_csum=d["ip_csum"], ip_comp=d["ip_comp"], l4_csum=d["l4_csum"],
                   l4_comp=d["l4_comp"], ip_covers=frozenset(d["ip_covers"]),
                   l4_covers=frozenset(d["l4_covers"]), base=dict(d["base"]), udp=d["udp"])

    def deltas(self, values: dict[str, int]) -> tuple[int, int]:
        """(IP, L4) checksum-sum changes, mod 0xFFFF, of moving the base flow to `values`."""
        dip = dl4 = 0
        for name, value in values.items():
            if name not in self.fields:
                continue
            width = self.fields[name][1]
            change = words(value, width) - words(self.base[name], width)
            if name in self.ip_covers:
                dip += change
            if name in self.l4_covers:
                dl4 += change
        return dip % M, dl4 % M


def _put(buf: bytearray, off: int, width: int, value: int) -> None:
    buf[off:off + width] = value.to_bytes(width, "big")


def _csum_value(base_csum: int, delta: int, udp: bool) -> int:
    value = (base_csum % M - delta) % M
    return M if (udp and value == 0) else value


def frame_for(t: Template, a: int, p: int, d: int) -> bytes:
    """One frame for flow (a, p, d) with freshly adjusted checksums (explicit flows)."""
    buf = bytearray(t.frame)
    values = {"a": a, "p": p, "d": d}
    for name, (off, width) in t.fields.items():
        _put(buf, off, width, values[name])
    dip, dl4 = t.deltas(values)
    _put(buf, t.ip_csum, 2, _csum_value(int.from_bytes(t.frame[t.ip_csum:t.ip_csum + 2],
                                                        "big"), dip, False))
    _put(buf, t.l4_csum, 2, _csum_value(int.from_bytes(t.frame[t.l4_csum:t.l4_csum + 2],
                                                        "big"), dl4, t.udp))
    return bytes(buf)


def _column(buf: bytearray, start: int, n: int, size: int, off: int, width: int,
            values: list[int] | range) -> None:
    """Write a field of `width` bytes in n consecutive frames from per-frame values."""
    end = start + n * size
    for i in range(width):
        shift = 8 * (width - 1 - i)
        buf[start + off + i:end:size] = bytes([(v >> shift) & 0xFF for v in values])


def _constant(buf: bytearray, start: int, n: int, size: int, off: int, width: int,
              value: int) -> None:
    """Write the same field value into n consecutive frames (C-speed strided writes)."""
    end = start + n * size
    for i, byte in enumerate(value.to_bytes(width, "big")):
        buf[start + off + i:end:size] = bytes((byte,)) * n


class RowWriter:
    """Writes rows of a flow space as frames of one template into a buffer."""

    def __init__(self, t: Template, space: FlowSpace) -> None:
        self.t = t
        self.space = space
        self.size = len(t.frame)
        self.dim = space.row_dim
        self.n = space.row_len
        self.base = self._base_row()

    def _base_row(self) -> bytes:
        t, n, size = self.t, self.n, self.size
        row = bytearray(t.frame * n)
        if self.dim not in t.fields:  # e.g. d for ICMP: every frame is the same
            return bytes(row)
        off, width = t.fields[self.dim]
        values = range(self.space.dim(self.dim).start, self.space.dim(self.dim).start + n)
        _column(row, 0, n, size, off, width, values)
        w0 = words(t.base[self.dim], width)
        if width == 2:
            deltas = [(v - w0) % M for v in values]
        else:
            deltas = [((v >> 16) + (v & M) - w0) % M for v in values]
        for covers, csum_off, udp in ((t.ip_covers, t.ip_csum, False),
                                      (t.l4_covers, t.l4_csum, t.udp)):
            if self.dim in covers:
                c0 = int.from_bytes(t.frame[csum_off:csum_off + 2], "big") % M
                sums = [(c0 - dv) % M for dv in deltas]
                if udp:
                    sums = [s or M for s in sums]
                _column(row, 0, n, size, csum_off, 2, sums)
        return bytes(row)

    def write(self, buf: bytearray, frame_index: int, row: int) -> int:
        """Write row `row` at frame slot `frame_index`; returns the number of frames."""
        t, n, size = self.t, self.n, self.size
        start = frame_index * size
        buf[start:start + n * size] = self.base
        outer = self.space.row_values(row)
        for name, value in outer.items():
            if name in t.fields:
                off, width = t.fields[name]
                _constant(buf, start, n, size, off, width, value)
        dip, dl4 = t.deltas(outer)
        if dip:
            _constant(buf, start, n, size, t.ip_comp, 2, (M - dip) % M)
        if dl4:
            _constant(buf, start, n, size, t.l4_comp, 2, (M - dl4) % M)
        return n
