"""A named network namespace on this machine: `ip netns exec NS argv`, and setns(2).

Besides the lab builder (lab/manager.py, lab/sshd.py) this is the only module that
enters a namespace. A process here keeps this machine's filesystem and binaries;
`ip netns exec` execs argv in place (the pid is the process's own), so starting,
stopping and dying with ctdrill are the local connector's.
"""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Sequence

from ctdrill.connect.local import LocalConnector
from ctdrill.errors import InvalidInput

CLONE_NEWNET = 0x40000000
NETNS_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")
PUT_SCRIPT = """
import os, sys
path, mode = sys.argv[1], int(sys.argv[2], 8)
data = sys.stdin.buffer.read()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
try:
    os.fchmod(fd, mode)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
finally:
    os.close(fd)
"""
_libc = ctypes.CDLL(None, use_errno=True)


def check_netns(name: str) -> str:
    """A namespace name `ip netns` accepts and no option can be mistaken for."""
    if not NETNS_NAME.fullmatch(name):
        raise InvalidInput(f"not a network namespace name: {name!r}",
                           "ctdrill_netns takes letters, digits, '_', '.', '-'")
    return name


def netns_argv(netns: str, argv: Sequence[str]) -> list[str]:
    """argv run inside the named namespace."""
    return ["ip", "netns", "exec", check_netns(netns), *argv]


def enter_netns(name: str) -> None:
    """Move the calling process (a surge worker, before it opens its sockets) into a
    namespace; a socket keeps the namespace it was made in. Python 3.11 has no os.setns."""
    if not NETNS_NAME.fullmatch(name):
        raise ValueError(f"not a network namespace name: {name!r}")
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


class NetnsConnector(LocalConnector):
    """The local connector, every command under `ip netns exec NS`."""

    def __init__(self, netns: str) -> None:
        self.netns = check_netns(netns)
        self.where = f"netns {netns}"

    def wrap(self, argv: list[str]) -> list[str]:
        return netns_argv(self.netns, argv)

    def require(self, command: str) -> None:
        super().require("ip")
        super().require(command)

    def put(self, data: bytes, path: str, mode: int = 0o644) -> None:
        """Written by a child inside the namespace (its /etc may be bind-mounted)."""
        self.run([self.python, "-c", PUT_SCRIPT, path, format(mode, "o")], input=data)
