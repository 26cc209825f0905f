"""Synthetic `conntrack -L -o extended` lines with a known mix, for tests and the bench (pure).

The mix (shares of the lines, in a fixed repeating order so counts are exact):
one-packet UDP from one noisy /24 to many ports of one venue, ESTABLISHED TCP from
many clients, TIME_WAIT, SYN_SENT (UNREPLIED TCP), CLOSE, ICMP, GRE, IPv6 TCP and an
unknown protocol. Sources outside the noisy range are spread over `spread` /24s so the
heavy-hitter counters see many distinct keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

NOISY = "10.77.9"
VENUE = "10.78.0.2"
PATTERN = ("udp1", "udp1", "udp1", "udp1", "udp1", "est", "est", "tw", "syn", "close",
           "icmp", "est6", "gre", "unknown", "udp1", "est", "udp1", "tw", "est", "udp1")
"""20 slots: 8 udp1, 5 est, 2 tw and one each of the rest."""


@dataclass(frozen=True)
class Mix:
    """How many of each kind `lines(n)` made (exact: the pattern repeats)."""

    counts: dict[str, int]


def _client(i: int, spread: int) -> str:
    k = (i * 2654435761) % spread
    return f"10.{100 + k // 65536 % 100}.{k // 256 % 256}.{k % 256}"


def line(kind: str, i: int, spread: int = 50_000) -> str:
    """One line of `kind` (a PATTERN name), varied by `i`."""
    port = 1024 + i % 60_000
    c = _client(i, spread)
    if kind == "udp1":
        src = f"{NOISY}.{i % 250 + 2}"
        return (f"ipv4     2 udp      17 {170 - i % 170} src={src} dst={VENUE} sport=40000 "
                f"dport={port} packets=1 bytes=35 [UNREPLIED] src={VENUE} dst={src} "
                f"sport={port} dport=40000 packets=0 bytes=0 mark=0 use=1")
    if kind in ("est", "tw", "syn", "close"):
        state, left = {"est": ("ESTABLISHED", 431_000), "tw": ("TIME_WAIT", 100),
                       "syn": ("SYN_SENT", 110), "close": ("CLOSE", 8)}[kind]
        flags = ("[UNREPLIED] ", "") if kind == "syn" else ("", "[ASSURED] ")
        return (f"ipv4     2 tcp      6 {left} {state} src={c} dst={VENUE} sport={port} "
                f"dport=9001 packets=4 bytes=300 {flags[0]}src={VENUE} dst={c} sport=9001 "
                f"dport={port} packets=3 bytes=200 {flags[1]}mark=0 use=1")
    if kind == "icmp":
        return (f"ipv4     2 icmp     1 29 src={c} dst={VENUE} type=8 code=0 id={i % 65536} "
                f"packets=1 bytes=84 src={VENUE} dst={c} type=0 code=0 id={i % 65536} "
                "packets=1 bytes=84 mark=0 use=1")
    if kind == "est6":
        return (f"ipv6     10 tcp      6 431000 ESTABLISHED src=2001:db8:{i % 4096:x}::1 "
                f"dst=2001:db8:ffff::2 sport={port} dport=443 src=2001:db8:ffff::2 "
                f"dst=2001:db8:{i % 4096:x}::1 sport=443 dport={port} [ASSURED] mark=0 use=1")
    if kind == "gre":
        return (f"ipv4     2 gre      47 170 src={c} dst={VENUE} srckey=0x0 dstkey=0x0 "
                f"src={VENUE} dst={c} srckey=0x0 dstkey=0x0 [ASSURED] mark=0 use=1")
    return (f"ipv4     2 unknown  2 590 src={c} dst=224.0.0.22 [UNREPLIED] src=224.0.0.22 "
            f"dst={c} mark=0 use=1")


def lines(n: int, spread: int = 50_000) -> Iterator[str]:
    """n lines in PATTERN order (generated lazily: a million need no memory)."""
    for i in range(n):
        yield line(PATTERN[i % len(PATTERN)], i, spread)


def mix(n: int) -> Mix:
    """The exact count of each kind among `lines(n)`."""
    counts = dict.fromkeys(PATTERN, 0)
    full, rest = divmod(n, len(PATTERN))
    for j, kind in enumerate(PATTERN):
        counts[kind] += full + (j < rest)
    return Mix(counts)
