"""A stand-in host for the audit tests: a connector that answers the audit's three reads
(the reader script, `nft -j list ruleset`, `conntrack -L`) from fixtures, and records
every argv it was given (so a test can prove nothing but reads ran).
This module holds no tests itself."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctdrill.connect.base import Completed, not_installed

SLAB_LINE = ("nf_conntrack        1008   1008    256   16    1 : tunables    0    0    0 "
             ": slabdata     63     63      0")
DEFAULT_SYSCTL = {"nf_conntrack_max": "65536", "nf_conntrack_buckets": "1024",
                  "nf_conntrack_count": "1200", "nf_conntrack_udp_timeout": "180",
                  "nf_conntrack_udp_timeout_stream": "120",
                  "nf_conntrack_tcp_timeout_time_wait": "120",
                  "nf_conntrack_tcp_timeout_close": "10",
                  "nf_conntrack_tcp_timeout_syn_sent": "120",
                  "nf_conntrack_tcp_timeout_established": "432000",
                  "nf_conntrack_icmp_timeout": "30", "nf_conntrack_frag6_timeout": "60",
                  "nf_conntrack_acct": "1", "nf_conntrack_tcp_loose": "1"}
LAB_RULESET = {"nftables": [
    {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
    {"table": {"family": "inet", "name": "ctd_lab", "handle": 1}},
    {"chain": {"family": "inet", "table": "ctd_lab", "name": "forward", "handle": 1,
               "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
    {"rule": {"family": "inet", "table": "ctd_lab", "chain": "forward", "handle": 2,
              "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}},
                                  "right": ["established", "related"]}},
                       {"counter": {"packets": 0, "bytes": 0}}, {"accept": None}]}}]}


def reader_output(sysctl: Mapping[str, str] | None = None, slab: str | None = SLAB_LINE,
                  **extra: Any) -> str:
    """What facts.READER prints on a host."""
    out = {"sysctl": dict(DEFAULT_SYSCTL if sysctl is None else sysctl), "slab": slab,
           "slab_size": None, "slab_error": None if slab else "/proc/slabinfo: Permission "
           "denied", "osrelease": "6.18.44", "owner": False, "memtotal_kb": "24000000"}
    return json.dumps(out | extra)


def udp_line(i: int, src: str = "10.77.0.2", left: int = 170) -> str:
    return (f"ipv4     2 udp      17 {left} src={src} dst=10.78.0.2 sport=40000 "
            f"dport={1024 + i} packets=1 bytes=35 [UNREPLIED] src=10.78.0.2 dst={src} "
            f"sport={1024 + i} dport=40000 packets=0 bytes=0 mark=0 use=1")


def tcp_line(i: int, state: str = "ESTABLISHED", dport: int = 9001) -> str:
    c = f"10.90.{i % 250}.{i // 250 % 250 + 1}"  # many /24s: live clients, no noisy range
    return (f"ipv4     2 tcp      6 431000 {state} src={c} dst=10.78.0.2 sport={20000 + i} "
            f"dport={dport} src=10.78.0.2 dst={c} sport={dport} dport={20000 + i} "
            "[ASSURED] mark=0 use=1")


@dataclass
class FakeSpawned:
    lines: list[str]
    rc: int = 0
    stderr: str = ""
    pid: int | None = 4242
    stopped: bool = False

    def __iter__(self) -> Iterator[str]:
        return iter(self.lines)

    def write(self, data: str | bytes) -> None:
        raise AssertionError("the audit writes nothing to a host process")

    def close_stdin(self) -> None:
        return None

    def send_signal(self, sig: int) -> None:
        return None

    def poll(self) -> int | None:
        return self.rc

    def wait(self, timeout: float | None = None) -> int | None:
        return self.rc

    def stderr_tail(self) -> str:
        return self.stderr

    def stop(self, grace: float = 2.0) -> int | None:
        self.stopped = True
        return self.rc


@dataclass
class FakeHost:
    """A connector over fixtures. `table`: the IPv4 listing; `nft`: JSON text, or None
    for nft not installed; `conntrack_rc`: the listing's exit code (127: missing)."""

    table: Iterable[str] = ()
    reader: str = field(default_factory=reader_output)
    nft: str | None = field(default_factory=lambda: json.dumps(LAB_RULESET))
    conntrack_rc: int = 0
    ipv6_rc: int = 0
    ipv6_stderr: str = "no ipv6 conntrack"
    where: str = "fake host"
    python: str = "python3"
    calls: list[tuple[str, ...]] = field(default_factory=list)
    spawned: list[FakeSpawned] = field(default_factory=list)
    closed: bool = False

    def run(self, argv: Sequence[str], *, input: bytes | str | None = None,
            timeout: float = 60.0, check: bool = True) -> Completed:
        self.calls.append(tuple(argv))
        if argv[0] == self.python:
            return Completed(tuple(argv), 0, self.reader, "")
        if argv[0] == "nft":
            if self.nft is None:
                raise not_installed("nft", self.where)
            return Completed(tuple(argv), 0, self.nft, "")
        raise AssertionError(f"unexpected command {argv}")

    def spawn(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              tty: bool = False) -> FakeSpawned:
        self.calls.append(tuple(argv))
        assert "conntrack" in argv and "-L" in argv, argv
        if argv[-1] == "ipv6":
            proc = FakeSpawned([], self.ipv6_rc, self.ipv6_stderr)
        else:
            proc = FakeSpawned(list(self.table), self.conntrack_rc,
                               "nice: 'conntrack': No such file or directory")
        self.spawned.append(proc)
        return proc

    def put(self, data: bytes, path: str, mode: int = 0o644) -> None:
        raise AssertionError("the audit puts no file on a host")

    def close(self) -> None:
        self.closed = True


def planted_table(udp: int = 1000, tcp: int = 200) -> list[str]:
    """The lab's planted mix: one-packet UDP from one /24, plus some TCP flows."""
    return [udp_line(i) for i in range(udp)] + [tcp_line(i) for i in range(tcp)]
