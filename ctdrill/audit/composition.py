"""What the table holds: a fold over entries as they stream (pure).

`Composition.add(entry)` is called once per listed entry and keeps only bounded state:

- entries by protocol and state (at most `MAX_KINDS` pairs; the rest pooled as other);
- stale residency: entries that hold a slot without carrying traffic, in disjoint
  classes (`STALE_CLASSES`): UNREPLIED UDP (one-packet UDP when accounting shows a
  single packet), UNREPLIED TCP (SYN_SENT), other UNREPLIED, TIME_WAIT, CLOSE; per
  class the count and the seconds left before they expire (sum and max);
- heavy hitters (topn.TopCounter, `cap` keys each): source prefixes (/24, IPv6 /64),
  destinations, (protocol, destination port) classes, and each source prefix's and
  destination's stale entries by class.

Memory is O(cap) whatever the table size; `result()` is the frozen summary.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ctdrill.audit.parse import Entry, parse_line
from ctdrill.audit.topn import DEFAULT_CAP, TopCounter

STALE_CLASSES = ("udp_unreplied", "tcp_unreplied", "other_unreplied", "tcp_time_wait",
                 "tcp_close")
"""Disjoint: an entry is in at most one."""
STALE_LABEL = {"udp_unreplied": "UNREPLIED UDP (one-packet flows)",
               "tcp_unreplied": "UNREPLIED TCP (SYN_SENT)",
               "other_unreplied": "other UNREPLIED",
               "tcp_time_wait": "TCP TIME_WAIT", "tcp_close": "TCP CLOSE"}
PORT_PROTOS = frozenset({"tcp", "udp", "udplite", "sctp", "dccp"})
MAX_KINDS = 256
TOP_N = 10
OTHER = "other"


def stale_class(e: Entry) -> str | None:
    """The stale class of an entry, or None when it carries (or may carry) traffic."""
    if e.unreplied:
        if e.proto == "udp":
            return "udp_unreplied"
        return "tcp_unreplied" if e.proto == "tcp" else "other_unreplied"
    if e.proto == "tcp":
        if e.state == "TIME_WAIT":
            return "tcp_time_wait"
        if e.state == "CLOSE":
            return "tcp_close"
    return None


@lru_cache(maxsize=8192)
def _v6_prefix(addr: str) -> str:
    try:
        return str(ipaddress.IPv6Network(f"{addr}/64", strict=False))
    except ValueError:
        return OTHER


def prefix_of(addr: str) -> str:
    """The address's /24 (IPv4) or /64 (IPv6) as CIDR text; "other" if it is neither.
    `addr` holds only hex digits, '.' and ':' (the parser's pattern)."""
    if ":" in addr:
        return _v6_prefix(addr)
    head, dot, _ = addr.rpartition(".")
    return f"{head}.0/24" if dot and head.count(".") == 2 else OTHER


@dataclass(frozen=True)
class Residency:
    """One stale class: how many, and the seconds they still have to live."""

    count: int = 0
    left_sum: int = 0
    left_max: int = 0
    one_packet: int = 0
    """Entries whose counters show exactly one packet (needs nf_conntrack_acct)."""
    counted: int = 0
    """Entries that carried packet counters at all."""

    @property
    def mean_left_s(self) -> float:
        return self.left_sum / self.count if self.count else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "mean_left_s": round(self.mean_left_s, 1),
                "max_left_s": self.left_max, "one_packet": self.one_packet,
                "with_counters": self.counted}


class _Tally:
    """Residency being counted (mutable; frozen into a Residency by `freeze`)."""

    __slots__ = ("count", "counted", "left_max", "left_sum", "one_packet")

    def __init__(self) -> None:
        self.count = self.left_sum = self.left_max = self.one_packet = self.counted = 0

    def add(self, e: Entry) -> None:
        self.count += 1
        if e.timeout is not None:
            self.left_sum += e.timeout
            self.left_max = max(self.left_max, e.timeout)
        if e.packets is not None:
            self.counted += 1
            self.one_packet += e.packets == 1

    def freeze(self) -> Residency:
        return Residency(self.count, self.left_sum, self.left_max, self.one_packet,
                         self.counted)


@dataclass(frozen=True)
class Share:
    """A heavy hitter: its key as text, entries held (a lower bound) and share."""

    key: str
    entries: int
    share: float

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "entries": self.entries, "share": round(self.share, 4)}


@dataclass(frozen=True)
class CompositionResult:
    """The frozen summary of one listing."""

    total: int
    unparsed: int
    by_kind: dict[str, int]
    """"proto STATE" (or "proto") -> entries."""
    residency: dict[str, Residency]
    sources: tuple[Share, ...]
    destinations: tuple[Share, ...]
    ports: tuple[Share, ...]
    """Keys "proto/port"."""
    stale_by_source: dict[str, dict[str, int]]
    stale_by_destination: dict[str, dict[str, int]]
    top_error: int
    """The most any heavy-hitter count may be below the truth (0: exact)."""

    def share(self, n: int) -> float:
        return n / self.total if self.total else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"entries": self.total, "unparsed_lines": self.unparsed,
                "by_protocol_state": dict(self.by_kind),
                "stale": {k: {**r.to_json(), "share": round(self.share(r.count), 4)}
                          for k, r in self.residency.items()},
                "top_sources": [s.to_json() for s in self.sources],
                "top_destinations": [s.to_json() for s in self.destinations],
                "top_ports": [s.to_json() for s in self.ports],
                "heavy_hitter_error": self.top_error}


class Composition:
    """The streaming fold. `add` per entry, `skip` per unparsable line, then `result`."""

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        self.total = 0
        self.unparsed = 0
        self.kinds: dict[str, int] = {}
        self.residency = {c: _Tally() for c in STALE_CLASSES}
        self.sources: TopCounter[str] = TopCounter(cap)
        self.destinations: TopCounter[str] = TopCounter(cap)
        self.ports: TopCounter[str] = TopCounter(cap)
        self.stale_src: TopCounter[tuple[str, str]] = TopCounter(cap)
        self.stale_dst: TopCounter[tuple[str, str]] = TopCounter(cap)

    def skip(self) -> None:
        self.unparsed += 1

    def fold_line(self, line: str) -> bool:
        """One listing line: parsed and added, or counted as unparsed; False if blank."""
        if not line.strip():
            return False
        entry = parse_line(line)
        if entry is None:
            self.skip()
        else:
            self.add(entry)
        return True

    def add(self, e: Entry) -> None:
        self.total += 1
        kind = f"{e.proto} {e.state}" if e.state else e.proto
        kinds = self.kinds
        if kind in kinds or len(kinds) < MAX_KINDS:
            kinds[kind] = kinds.get(kind, 0) + 1
        else:
            kinds[OTHER] = kinds.get(OTHER, 0) + 1
        src = prefix_of(e.src)
        self.sources.add(src)
        self.destinations.add(e.dst)
        if e.dport is not None and e.proto in PORT_PROTOS:
            self.ports.add(f"{e.proto}/{e.dport}")
        if not (e.unreplied or e.state == "TIME_WAIT" or e.state == "CLOSE"):
            return
        cls = stale_class(e)
        if cls is not None:
            self.residency[cls].add(e)
            self.stale_src.add((src, cls))
            self.stale_dst.add((e.dst, cls))

    def result(self, top_n: int = TOP_N) -> CompositionResult:
        def shares(counter: TopCounter[str]) -> tuple[Share, ...]:
            return tuple(Share(h.key, h.count, h.count / self.total if self.total else 0.0)
                         for h in counter.top(top_n))

        srcs, dsts = shares(self.sources), shares(self.destinations)
        kinds = dict(sorted(self.kinds.items(), key=lambda kv: (-kv[1], kv[0])))
        return CompositionResult(
            total=self.total, unparsed=self.unparsed, by_kind=kinds,
            residency={k: r.freeze() for k, r in self.residency.items() if r.count},
            sources=srcs, destinations=dsts, ports=shares(self.ports),
            stale_by_source=_stale_of({s.key for s in srcs}, self.stale_src),
            stale_by_destination=_stale_of({d.key for d in dsts}, self.stale_dst),
            top_error=max(c.error for c in (self.sources, self.destinations, self.ports,
                                            self.stale_src, self.stale_dst)))


def _stale_of(keys: set[str], counter: TopCounter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """Per heavy hitter, its stale entries by class (from the bounded (key, class) counts)."""
    out: dict[str, dict[str, int]] = {k: {} for k in sorted(keys)}
    for (key, cls), n in counter.counts.items():
        if key in out:
            out[key][cls] = n
    return out
