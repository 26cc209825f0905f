"""The batch sender's system edge: AF_PACKET sockets, sendmmsg via ctypes (a worker enters
its namespaces with connect/netns.enter_netns).

Why this shape (measured on the 2-core lab, see docs/SURGE.md): one sendmmsg call of
1024 prebuilt frames costs one syscall, so a core spends its time in the kernel's
per-packet work (~5.5 us per new conntrack entry), not in Python. The socket has
protocol 0, so it receives nothing and costs nothing on the receive path.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

BATCH = 1024

_libc = ctypes.CDLL(None, use_errno=True)
_sendmmsg = _libc.sendmmsg
_sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
_sendmmsg.restype = ctypes.c_int


class IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class MsgHdr(ctypes.Structure):
    _fields_ = [("msg_name", ctypes.c_void_p), ("msg_namelen", ctypes.c_uint32),
                ("msg_iov", ctypes.c_void_p), ("msg_iovlen", ctypes.c_size_t),
                ("msg_control", ctypes.c_void_p), ("msg_controllen", ctypes.c_size_t),
                ("msg_flags", ctypes.c_int)]


class MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", MsgHdr), ("msg_len", ctypes.c_uint)]


MMSG_SIZE = ctypes.sizeof(MMsgHdr)


def packet_socket(ifname: str) -> socket.socket:
    """A send-only AF_PACKET socket bound to `ifname` in the current namespace."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((ifname, 0))
    return sock


class FrameRing:
    """A buffer of equal-size frames and the mmsghdr array that points at each one.

    The buffer is a bytearray exported to ctypes (its address never moves), so frames
    can be rewritten in place between sendmmsg calls while the headers stay valid.
    """

    def __init__(self, frame_size: int, capacity: int) -> None:
        self.frame_size = frame_size
        self.capacity = capacity
        self.buf = bytearray(frame_size * capacity)
        self._cbuf = (ctypes.c_char * len(self.buf)).from_buffer(self.buf)
        base = ctypes.addressof(self._cbuf)
        self._iov = (IoVec * capacity)()
        self._msgs = (MMsgHdr * capacity)()
        iov_base = ctypes.addressof(self._iov)
        iov_size = ctypes.sizeof(IoVec)
        for i in range(capacity):
            self._iov[i].iov_base = base + i * frame_size
            self._iov[i].iov_len = frame_size
            self._msgs[i].msg_hdr.msg_iov = iov_base + i * iov_size
            self._msgs[i].msg_hdr.msg_iovlen = 1
        self.msgs_addr = ctypes.addressof(self._msgs)

    def set_length(self, i: int, length: int) -> None:
        """Frames shorter than the slot (explicit flows of mixed protocols)."""
        self._iov[i].iov_len = length


@dataclass
class SendCounters:
    packets: int = 0
    errors: int = 0
    enobufs: int = 0
    last_error: str = ""


class SendFailed(Exception):
    """The interface refuses frames (gone, down): the worker stops and says why."""


def send_frames(fd: int, ring: FrameRing, start: int, n: int, counters: SendCounters,
                stop: Callable[[], bool]) -> int:
    """Send frames [start, start+n) in sendmmsg calls; returns how many were sent.

    ENOBUFS/EAGAIN (the device or backlog is full) back off and retry, counted, never
    fatal; EINTR retries; other errors are counted and, if they persist, raise.
    A stop request ends the retries early: the return value is then what really left.
    """
    done = 0
    backoff = 0.0001
    failures = 0
    while done < n:
        k = min(BATCH, n - done)
        r = _sendmmsg(fd, ring.msgs_addr + (start + done) * MMSG_SIZE, k, 0)
        if r > 0:
            done += r
            counters.packets += r
            backoff = 0.0001
            failures = 0
            continue
        err = ctypes.get_errno() if r < 0 else errno.EAGAIN
        if err == errno.EINTR:
            if stop():
                break
            continue
        if err in (errno.ENOBUFS, errno.EAGAIN):
            counters.enobufs += 1
            if stop():
                break
            time.sleep(backoff)
            backoff = min(backoff * 2, 0.005)
            continue
        counters.errors += 1
        counters.last_error = os.strerror(err)
        failures += 1
        if failures >= 20 or stop():
            raise SendFailed(f"sendmmsg: {os.strerror(err)}")
        time.sleep(0.001)
    return done
