"""One line of `conntrack -L` (plain or `-o extended`) -> one small typed entry (pure).

The line format is conntrack-tools' (libnetfilter_conntrack's default output):

    [L3NAME L3NUM] L4NAME L4NUM TIMEOUT [STATE] ORIG-TUPLE [packets= bytes=] [UNREPLIED]
        REPLY-TUPLE [packets= bytes=] [ASSURED] [OFFLOAD] mark=.. [zone=..] use=..

The L3 pair is there with `-o extended` only; STATE is printed for tcp, sctp and dccp;
a tuple is `src= dst=` plus `sport= dport=` (tcp, udp, udplite, sctp, dccp), `type=
code= id=` (icmp, icmpv6) or `srckey= dstkey=` (gre); other protocols print
`unknown N`. The original tuple is the one before the second `src=`. Packet counters
appear only with nf_conntrack_acct=1.

Text from a host is data: a line that is not an entry (the summary line, garbage, a
line longer than `MAX_LINE`) gives None, never an exception.
"""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_LINE = 4096
"""A real entry is under 400 characters; anything far longer is not one."""
FLAG_UNREPLIED = "[UNREPLIED]"
FLAG_ASSURED = "[ASSURED]"


class Entry(NamedTuple):
    """One conntrack entry, original direction. A NamedTuple: a million are made a run."""

    proto: str
    """L4 protocol name as conntrack prints it (tcp, udp, icmp, ..., unknown)."""
    state: str | None
    """Protocol state (tcp, sctp, dccp), else None."""
    timeout: int | None
    """Seconds left before the entry expires."""
    unreplied: bool
    assured: bool
    src: str
    dst: str
    sport: int | None
    dport: int | None
    packets: int | None
    """Original-direction packets, when accounting is on."""
    family: str
    """ipv4 or ipv6 (from the extended prefix, else from the address)."""


_LINE = re.compile(
    r"\s*(?:(ipv[46])\s+\d+\s+)?"          # -o extended: L3 name and number
    r"([a-z][a-z0-9_-]*)\s+\d+\s+"           # L4 name and number
    r"(?:(\d+)\s+)?"                         # seconds left
    r"(?:([A-Z][A-Z0-9_]*)\s+)?"              # protocol state (tcp, sctp, dccp)
    r"src=([0-9A-Fa-f:.]+)\s+dst=([0-9A-Fa-f:.]+)"
    r"(?:\s+sport=(\d+)\s+dport=(\d+))?", re.ASCII)
"""The original tuple up to its ports; flags and counters are found after it."""


def _packets(line: str, start: int) -> int | None:
    """The original direction's packet counter: one before the reply tuple's src=."""
    at = line.find(" packets=", start)
    if at < 0:
        return None
    reply = line.find(" src=", start)
    if 0 <= reply < at:
        return None
    end = line.find(" ", at + 9)
    digits = line[at + 9:end if end > 0 else len(line)]
    return int(digits) if digits.isascii() and digits.isdecimal() else None


def parse_line(line: str) -> Entry | None:
    """The entry a `conntrack -L` line describes, or None if it is not one."""
    if len(line) > MAX_LINE:
        return None
    m = _LINE.match(line)
    if m is None:
        return None
    family, proto, timeout, state, src, dst, sport, dport = m.groups()
    return Entry(proto, state, int(timeout) if timeout else None,
                 FLAG_UNREPLIED in line, FLAG_ASSURED in line, src, dst,
                 int(sport) if sport else None, int(dport) if dport else None,
                 _packets(line, m.end()), family or ("ipv6" if ":" in src else "ipv4"))
