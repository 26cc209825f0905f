"""The send loop's error handling, with sendmmsg replaced: ENOBUFS backs off and is
counted, EINTR retries, a stop request ends retries, persistent errors stop the worker."""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Iterator
from typing import Any

import pytest

from ctdrill.surge import sendmmsg as sm


def fake(monkeypatch: pytest.MonkeyPatch, script: list[Any]) -> list[int]:
    """sendmmsg that follows `script`: an int = frames sent, an errno name = failure."""
    calls: list[int] = []
    steps: Iterator[Any] = iter(script)

    def sendmmsg(_fd: int, _addr: int, k: int, _flags: int) -> int:
        calls.append(k)
        step = next(steps, "all")
        if step == "all":
            return k
        if isinstance(step, int):
            return min(step, k)
        ctypes.set_errno(getattr(errno, step))
        return -1

    monkeypatch.setattr(sm, "_sendmmsg", sendmmsg)
    monkeypatch.setattr(sm.time, "sleep", lambda _s: None)
    return calls


def test_enobufs_is_counted_and_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake(monkeypatch, ["ENOBUFS", 300, "EINTR", "EAGAIN", "ENOBUFS"])
    ring = sm.FrameRing(60, 2048)
    counters = sm.SendCounters()
    sent = sm.send_frames(0, ring, 0, 2000, counters, lambda: False)
    assert sent == 2000 == counters.packets
    assert counters.enobufs == 3 and counters.errors == 0
    # batches of 1024 retried after each failure; a partial send continues where it ended
    assert calls == [1024, 1024, 1024, 1024, 1024, 1024, 676]


def test_a_stop_request_ends_the_retries_with_a_truthful_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, [100] + ["ENOBUFS"] * 50)
    counters = sm.SendCounters()
    stop = iter([False, False, True])
    sent = sm.send_frames(0, sm.FrameRing(60, 1024), 0, 1000, counters,
                          lambda: next(stop, True))
    assert sent == 100 == counters.packets
    assert counters.enobufs == 3


def test_persistent_errors_raise_after_counting(monkeypatch: pytest.MonkeyPatch) -> None:
    fake(monkeypatch, ["ENETDOWN"] * 30)
    counters = sm.SendCounters()
    with pytest.raises(sm.SendFailed, match="Network is down"):
        sm.send_frames(0, sm.FrameRing(60, 16), 0, 10, counters, lambda: False)
    assert counters.errors == 20 and counters.packets == 0
    assert counters.last_error == "Network is down"


def test_frame_ring_points_each_header_at_its_slot() -> None:
    ring = sm.FrameRing(64, 4)
    ring.buf[64:128] = b"x" * 64
    msgs = (sm.MMsgHdr * 4).from_address(ring.msgs_addr)
    iov = sm.IoVec.from_address(msgs[1].msg_hdr.msg_iov)
    assert ctypes.string_at(iov.iov_base, iov.iov_len) == b"x" * 64
    ring.set_length(1, 10)
    assert sm.IoVec.from_address(msgs[1].msg_hdr.msg_iov).iov_len == 10
