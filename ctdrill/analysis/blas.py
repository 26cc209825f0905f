"""One BLAS thread while the analysis runs (docs/ANALYSIS.md "Speed without changing the
numbers").

The pipeline already keeps the cores busy itself: the main thread and two background
workers (replicate weights, the four QuantReg fits), plus DuckDB's readers. OpenBLAS
would add its own threads to every matrix product, and its threads spin between calls:
the QuantReg fits (a few hundred 100,000 x 7 products each) burned twice their CPU that
way, taken from the stages beside them. With one BLAS thread every product is computed
by the calling thread alone, whatever the machine's core count.

The OpenBLAS builds loaded in this process (numpy's and scipy's carry their own) are
found as threadpoolctl finds them, in /proc/self/maps, and each is told through its own
exported setter; without /proc, or with another BLAS, nothing changes.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

Setter = Callable[[int], None]
Getter = Callable[[], int]

_CONTROLS = (  # (setter, getter) as OpenBLAS builds export them
    ("openblas_set_num_threads", "openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
)


def _loaded_openblas(maps: Path = Path("/proc/self/maps")) -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process, in first-seen order."""
    try:
        text = maps.read_text()
    except OSError:
        return []
    paths = (line.split(maxsplit=5)[-1] for line in text.splitlines()
             if line.count(" ") >= 5)
    return list(dict.fromkeys(p for p in paths if "openblas" in Path(p).name.lower()))


def _controls(path: str) -> tuple[Setter, Getter] | None:
    """The (setter, getter) one library exports, None if it has neither."""
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for setter, getter in _CONTROLS:
        if hasattr(lib, setter) and hasattr(lib, getter):
            return cast(Setter, getattr(lib, setter)), cast(Getter, getattr(lib, getter))
    return None


@contextmanager
def one_thread() -> Iterator[int]:
    """Every loaded OpenBLAS at one thread inside, its own count restored after; yields
    how many libraries were set."""
    found = [c for c in map(_controls, _loaded_openblas()) if c is not None]
    before: list[tuple[Setter, int]] = []
    for setter, getter in found:
        before.append((setter, int(getter())))
        setter(1)
    try:
        yield len(found)
    finally:
        for setter, count in before:
            setter(count)
