"""The conntrack -L line parser on every line form conntrack(8) prints, and on text that is
not an entry (host text is data: never an exception)."""

from __future__ import annotations

import random

import pytest

from ctdrill.audit.parse import MAX_LINE, Entry, parse_line
from ctdrill.audit.synth import PATTERN, line

# Written from conntrack-tools' output format (libnetfilter_conntrack's default
# snprintf): plain and `-o extended`, one per protocol form.
CASES = {
    "tcp extended": (
        "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.2 dst=10.0.0.1 sport=54321 "
        "dport=22 src=10.0.0.1 dst=10.0.0.2 sport=22 dport=54321 [ASSURED] mark=0 use=1",
        Entry("tcp", "ESTABLISHED", 431999, False, True, "10.0.0.2", "10.0.0.1", 54321, 22,
              None, "ipv4")),
    "udp plain unreplied": (
        "udp      17 29 src=10.77.0.2 dst=10.78.0.2 sport=40000 dport=1024 [UNREPLIED] "
        "src=10.78.0.2 dst=10.77.0.2 sport=1024 dport=40000 mark=0 use=1",
        Entry("udp", None, 29, True, False, "10.77.0.2", "10.78.0.2", 40000, 1024, None,
              "ipv4")),
    "udp with counters and zone": (
        "ipv4     2 udp      17 170 src=10.77.0.2 dst=10.78.0.2 sport=40000 dport=1024 "
        "packets=1 bytes=35 [UNREPLIED] src=10.78.0.2 dst=10.77.0.2 sport=1024 dport=40000 "
        "packets=0 bytes=0 mark=0 zone=3 use=1",
        Entry("udp", None, 170, True, False, "10.77.0.2", "10.78.0.2", 40000, 1024, 1,
              "ipv4")),
    "icmp": (
        "icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=1234 src=10.0.0.2 "
        "dst=10.0.0.1 type=0 code=0 id=1234 mark=0 use=1",
        Entry("icmp", None, 29, False, False, "10.0.0.1", "10.0.0.2", None, None, None,
              "ipv4")),
    "icmpv6 extended": (
        "ipv6     10 icmpv6   58 29 src=fe80::1 dst=ff02::1 type=128 code=0 id=1 [UNREPLIED] "
        "src=ff02::1 dst=fe80::1 type=129 code=0 id=1 mark=0 use=1",
        Entry("icmpv6", None, 29, True, False, "fe80::1", "ff02::1", None, None, None,
              "ipv6")),
    "tcp ipv6 plain": (
        "tcp      6 117 SYN_SENT src=2001:db8::1 dst=2001:db8::2 sport=40000 dport=443 "
        "[UNREPLIED] src=2001:db8::2 dst=2001:db8::1 sport=443 dport=40000 mark=0 use=1",
        Entry("tcp", "SYN_SENT", 117, True, False, "2001:db8::1", "2001:db8::2", 40000, 443,
              None, "ipv6")),
    "gre": (
        "gre      47 179 src=10.0.0.1 dst=10.0.0.2 srckey=0x0 dstkey=0x0 src=10.0.0.2 "
        "dst=10.0.0.1 srckey=0x0 dstkey=0x0 [ASSURED] mark=0 use=1",
        Entry("gre", None, 179, False, True, "10.0.0.1", "10.0.0.2", None, None, None,
              "ipv4")),
    "sctp": (
        "sctp     132 3 COOKIE_WAIT src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=36412 "
        "[UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=36412 dport=5000 mark=0 use=1",
        Entry("sctp", "COOKIE_WAIT", 3, True, False, "10.0.0.1", "10.0.0.2", 5000, 36412,
              None, "ipv4")),
    "unknown protocol": (
        "unknown  2 599 src=10.0.0.1 dst=224.0.0.1 [UNREPLIED] src=224.0.0.1 dst=10.0.0.1 "
        "mark=0 use=1",
        Entry("unknown", None, 599, True, False, "10.0.0.1", "224.0.0.1", None, None, None,
              "ipv4")),
    "offloaded, no timeout": (
        "tcp      6 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2 src=5.6.7.8 "
        "dst=1.2.3.4 sport=2 dport=1 [OFFLOAD] [ASSURED] mark=0 use=2",
        Entry("tcp", "ESTABLISHED", None, False, True, "1.2.3.4", "5.6.7.8", 1, 2, None,
              "ipv4")),
    "reply counters only after the reply tuple": (
        "udp      17 29 src=10.77.0.2 dst=10.78.0.2 sport=40000 dport=1024 [UNREPLIED] "
        "src=10.78.0.2 dst=10.77.0.2 sport=1024 dport=40000 packets=7 mark=0 use=1",
        Entry("udp", None, 29, True, False, "10.77.0.2", "10.78.0.2", 40000, 1024, None,
              "ipv4")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_line_form_parses_to_its_entry(name: str) -> None:
    text, expected = CASES[name]
    assert parse_line(text) == expected


@pytest.mark.parametrize("text", [
    "", "   ", "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.",
    "tcp 6 100 ESTABLISHED", "src=1.2.3.4 dst=5.6.7.8", "udp 17 29 src=<b>x</b> dst=1.2.3.4",
    "udp 17 29 src=1.2.3.4 dst=5.6.7.8 " + "x" * MAX_LINE,
    "udp 17 \u00b29 src=1.2.3.4 dst=5.6.7.8", "\x1b[31m udp 17 29 src=1.2.3.4 dst=5.6.7.8",
    "ipv4 2 tcp 6 \u0661\u0662 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=\u0661 dport=2",
])
def test_text_that_is_not_an_entry_gives_none(text: str) -> None:
    assert parse_line(text) is None


def test_any_damage_to_a_line_gives_an_entry_or_none_never_an_exception() -> None:
    rng = random.Random(15)
    corpus = [c[0] for c in CASES.values()] + [line(k, i) for i, k in enumerate(PATTERN)]
    junk = ["=", "[", "]", " ", "\x00", "\u202e", "packets=", "src=", "99999999999999999999"]
    for text in corpus:
        for cut in range(len(text)):
            got = parse_line(text[:cut])
            assert got is None or isinstance(got, Entry)
        for _ in range(200):
            chars = list(text)
            for _ in range(rng.randint(1, 5)):
                chars.insert(rng.randrange(len(chars) + 1), rng.choice(junk))
            got = parse_line("".join(chars))
            assert got is None or isinstance(got, Entry)


def test_synthetic_lines_parse_as_the_kind_they_were_made() -> None:
    kinds = {"udp1": ("udp", None, True), "est": ("tcp", "ESTABLISHED", False),
             "tw": ("tcp", "TIME_WAIT", False), "syn": ("tcp", "SYN_SENT", True),
             "close": ("tcp", "CLOSE", False), "icmp": ("icmp", None, False),
             "est6": ("tcp", "ESTABLISHED", False), "gre": ("gre", None, False),
             "unknown": ("unknown", None, True)}
    for i, kind in enumerate(PATTERN):
        e = parse_line(line(kind, i))
        assert e is not None, kind
        assert (e.proto, e.state, e.unreplied) == kinds[kind]
        assert e.family == ("ipv6" if kind == "est6" else "ipv4")
