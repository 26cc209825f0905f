"""Shared benchmark plumbing: quantiles and writing a result page into docs/."""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ctdrill.metrics.quantile import nearest_rank

if TYPE_CHECKING:
    from ctdrill.lab.manager import LabUp

DOCS = Path(__file__).resolve().parent.parent / "docs"


def quantile(values: list[float], q: float) -> float:
    """ctdrill's one quantile definition (nearest rank); NaN for no values."""
    value = nearest_rank(values, q)
    return float("nan") if value is None else value


def machine() -> str:
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return (f"{platform.node()} kernel {platform.release()}, {cores} cores, "
            f"Python {platform.python_version()}")


def write_page(name: str, title: str, body: str) -> Path:
    DOCS.mkdir(exist_ok=True)
    path = DOCS / name
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    path.write_text(f"# {title}\n\nLast run: {stamp} on {machine()}.\n\n{body}\n")
    return path


@contextmanager
def bench_lab(name: str, ssh: bool = False) -> Iterator[LabUp]:
    """A lab of the benchmark's own (netns only, or with its sshds), removed however the
    run ends."""
    from ctdrill.lab import manager

    lab = manager.up(name, ssh=ssh)
    try:
        yield lab
    finally:
        manager.down(name)
