"""Answer suppression: a small nft table (`ctd_surge`) that keeps the ends silent.

Unanswered flows must stay unanswered: otherwise the venue's kernel answers each SYN
with a RST (the gateway's entry moves to CLOSE) and the venue spends a core on it. In
ASSURED mode the handshake is forged from both ends, and the real kernels would RST
the forged SYN and SYN-ACK, killing the entries. So while a surge runs, the client and
venue namespaces (never the gateway under test) drop exactly the surge's flows at
ingress, before their IP stacks see them. The table carries the owner's pid: a stale
one (its owner gone) is replaced, a live one means another surge is running there.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ctdrill import PREFIX
from ctdrill.connect import namespace_connector
from ctdrill.errors import EnvironmentProblem
from ctdrill.system.run import pid_alive

TABLE = f"{PREFIX}_surge"
OWNER = re.compile(r'comment "ctdrill surge pid=(\d+)"')


@dataclass(frozen=True)
class Silence:
    """Drop rules for one namespace's ingress on `ifname`."""

    netns: str | None  # None: this machine's initial namespace (a `local` source)
    ifname: str
    rules: tuple[str, ...]


def render(silence: Silence, pid: int) -> str:
    rules = "\n".join(f"    {r} counter drop" for r in silence.rules)
    return (f"table netdev {TABLE} {{\n"
            f"  comment \"ctdrill surge pid={pid}\"\n"
            f"  chain ingress {{\n"
            f"    type filter hook ingress device \"{silence.ifname}\" priority -500; "
            f"policy accept;\n{rules}\n  }}\n}}\n")


def _existing_owner(netns: str | None) -> int | None:
    out = namespace_connector(netns).run(["nft", "list", "table", "netdev", TABLE], check=False)
    if not out.ok:
        return None
    m = OWNER.search(out.stdout)
    return int(m.group(1)) if m else 0


def remove(netns: str | None) -> None:
    namespace_connector(netns).run(["nft", "delete", "table", "netdev", TABLE], check=False)


def install(silence: Silence) -> None:
    owner = _existing_owner(silence.netns)
    if owner is not None:
        if owner and owner != os.getpid() and pid_alive(owner):
            raise EnvironmentProblem(f"another surge (pid {owner}) is running in "
                                     f"{silence.netns or 'this host'}",
                                     "wait for it or stop it")
        remove(silence.netns)  # a crashed run's leftover
    namespace_connector(silence.netns).run(["nft", "-f", "-"],
                                           input=render(silence, os.getpid()))


@contextlib.contextmanager
def silenced(silences: Sequence[Silence]) -> Iterator[None]:
    """Install the tables for the block; always remove them afterwards."""
    installed: list[str | None] = []
    try:
        for s in silences:
            install(s)
            installed.append(s.netns)
        yield
    finally:
        for netns in installed:
            remove(netns)


def port_match(proto: str, field: str, lo: int, hi: int) -> str:
    return f"{proto} {field} {lo}" if lo == hi else f"{proto} {field} {lo}-{hi}"


def addr_match(field: str, first: str, last: str) -> str:
    return f"ip {field} {first}" if first == last else f"ip {field} {first}-{last}"
