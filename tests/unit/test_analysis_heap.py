"""Inside `heap.kept_heap` freed memory stays in the process for the next array, and
`heap.trim` hands it back (ctdrill/analysis/heap.py): what the 10M run's system time
came down with. Read off the process's own resident size."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ctdrill.analysis import heap

MIB = 2**20
BLOCK = 256 * MIB


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _touch_and_free() -> int:
    """Resident growth left after a written 256 MiB array is freed."""
    before = _rss()
    block = np.ones(BLOCK // 8)
    del block
    return _rss() - before


pytestmark = pytest.mark.skipif(heap._glibc() is None, reason="glibc's allocator only")


def test_freed_blocks_stay_inside_and_trim_gives_them_back() -> None:
    heap.trim()
    assert _touch_and_free() < BLOCK // 4  # glibc's default: its own mapping, unmapped
    with heap.kept_heap() as kept:
        assert kept
        assert _touch_and_free() > BLOCK * 3 // 4  # kept for the next one
        reused = _rss()
        again = np.ones(BLOCK // 8)
        assert _rss() - reused < BLOCK // 4  # the same pages, not new ones
        del again
        heap.trim()
        assert _rss() - reused < -BLOCK * 3 // 4
    assert _touch_and_free() < BLOCK // 4  # defaults back after


def test_without_glibc_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "confstr", lambda name: None)  # musl has no such name
    with heap.kept_heap() as kept:
        assert not kept
        heap.trim()  # a no-op, no error
