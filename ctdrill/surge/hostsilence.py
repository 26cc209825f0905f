"""A surge process's own silence table on its host (the split, cross-host surge).

suppress.py explains why the ends of a surge drop its packets at ingress. When the
sender and the handshake partner run on remote hosts, each process installs its own
table on its own host (`ctd_surge_<role>`) and removes it when it ends: on completion,
a stop, SIGTERM, or the SIGHUP sshd sends when the orchestrator's connection drops. A
table left by a killed process names its pid; the next surge replaces it once that pid
is gone on that host. Rules are rendered here from typed numbers (addresses as ints,
port ranges), never from text. Standard library only (shipped, connect/payload.py).
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from collections.abc import Sequence
from typing import Any

from ctdrill.system.pids import pid_alive

OWNER = re.compile(r'comment "ctdrill surge pid=(\d+)"')
TABLE_NAME = re.compile(r"ctd_surge_[a-z0-9]{1,12}")
IFNAME = re.compile(r"[A-Za-z0-9_.@-]{1,15}")


class SilenceError(RuntimeError):
    """Another live surge owns the table, or nft refused it."""


def _range(field: str, bounds: Sequence[int], as_addr: bool) -> str:
    lo, hi = int(bounds[0]), int(bounds[1])
    if as_addr:
        a, b = str(ipaddress.IPv4Address(lo)), str(ipaddress.IPv4Address(hi))
    else:
        if not (0 <= lo <= hi <= 65535):
            raise ValueError(f"bad port range {lo}-{hi}")
        a, b = str(lo), str(hi)
    return f"{field} {a}" if a == b else f"{field} {a}-{b}"


def rule(match: dict[str, Any]) -> str:
    """One drop rule from {proto, saddr, daddr, sport?, dport?, icmp?} (typed values)."""
    proto = str(match["proto"])
    if proto not in ("tcp", "udp", "icmp"):
        raise ValueError(f"bad protocol {proto!r}")
    parts = [_range("ip saddr", match["saddr"], True), _range("ip daddr", match["daddr"], True)]
    if proto == "icmp":
        parts.append("icmp type echo-request")
    else:
        for key in ("sport", "dport"):
            if match.get(key) is not None:
                parts.append(_range(f"{proto} {key}", match[key], False))
    return " ".join(parts) + " counter drop"


def render(table: str, ifname: str, matches: Sequence[dict[str, Any]], pid: int) -> str:
    if not TABLE_NAME.fullmatch(table) or not IFNAME.fullmatch(ifname):
        raise ValueError(f"bad table or interface name {table!r} {ifname!r}")
    rules = "\n".join(f"    {rule(m)}" for m in matches)
    return (f"table netdev {table} {{\n  comment \"ctdrill surge pid={pid}\"\n"
            f"  chain ingress {{\n    type filter hook ingress device \"{ifname}\" "
            f"priority -500; policy accept;\n{rules}\n  }}\n}}\n")


def _nft(args: list[str], text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nft", *args], input=text, capture_output=True, text=True,
                          check=False)


def install(table: str, ifname: str, matches: Sequence[dict[str, Any]]) -> None:
    """Replace a stale table, refuse a live one, install ours (owned by this pid)."""
    text = render(table, ifname, matches, os.getpid())
    old = _nft(["list", "table", "netdev", table])
    if old.returncode == 0:
        m = OWNER.search(old.stdout)
        if m and int(m.group(1)) != os.getpid() and pid_alive(int(m.group(1))):
            raise SilenceError(f"another surge (pid {m.group(1)}) owns {table} on this host")
        remove(table)
    done = _nft(["-f", "-"], text)
    if done.returncode != 0:
        raise SilenceError(f"nft refused {table}: {done.stderr.strip()[-200:]}")


def remove(table: str) -> None:
    if TABLE_NAME.fullmatch(table):
        _nft(["delete", "table", "netdev", table])
