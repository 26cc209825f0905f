"""Freed memory stays in the process while the analysis runs (docs/ANALYSIS.md "Speed
without changing the numbers").

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a mapping
of its own and unmaps it on free. A column of a ten-million-order log is 80 MB, so every
temporary the pipeline makes of it was mapped, faulted in and zeroed page by page by the
kernel, then unmapped (a TLB shootdown on every core running one of the process's
threads), and the next one of the same size started over: at 10M orders, 45-66 s of
system time, a third of the run's CPU. Inside `kept_heap` large blocks come from the
heap instead (mmap off, no automatic trimming), so a freed column is reused by the next
one. `trim` hands the free pages back (malloc_trim) between stages, which keeps the peak
resident size that of the largest stage rather than the sum of what each stage left.

Only allocator settings change: every array holds the same values. Without glibc
(musl, macOS) nothing changes. On exit the settings go back to glibc's defaults, except
that the mmap threshold stays fixed rather than adaptive (glibc has no way to restore it).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
DEFAULT_TRIM_THRESHOLD = 128 * 1024
DEFAULT_MMAP_MAX = 65536
KEEP_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: 2 GiB, more than any stage frees


def _glibc() -> ctypes.CDLL | None:
    """This process's C library if it is glibc (mallopt and malloc_trim as documented);
    asked of the running C library itself, not of the interpreter's file."""
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        return None
    if not version or not version.startswith("glibc"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def trim() -> None:
    """Give free heap pages back to the kernel (between stages; a no-op without glibc)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@contextmanager
def kept_heap() -> Iterator[bool]:
    """Large blocks from the heap and no automatic trimming inside; yields whether the
    allocator was glibc's (and so was set)."""
    libc = _glibc()
    if libc is None:
        yield False
        return
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD)
    try:
        yield True
    finally:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)
