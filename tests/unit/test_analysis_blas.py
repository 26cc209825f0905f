"""The analysis runs BLAS on one thread (ctdrill/analysis/blas.py) and gives the count
back after."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ctdrill.analysis import blas


def _counts() -> list[int]:
    found = [blas._controls(p) for p in blas._loaded_openblas()]
    return [c[1]() for c in found if c is not None]


def test_one_thread_inside_and_restored_after() -> None:
    np.ones((64, 64)) @ np.ones((64, 64))  # numpy's OpenBLAS is loaded and in use
    before = _counts()
    assert before, "numpy's wheel carries OpenBLAS: it must be found"
    with blas.one_thread() as n:
        assert n == len(before)
        assert _counts() == [1] * n
    assert _counts() == before


def test_without_proc_maps_nothing_changes(tmp_path: Path) -> None:
    assert blas._loaded_openblas(tmp_path / "missing") == []
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/libm.so.6\n"
                    "7f02-7f03 rw-p 00000000 00:00 0\n")
    assert blas._loaded_openblas(maps) == []
