"""Which engine holds the pressure timeline: in memory (pandas/numpy, every format) or
columnar (DuckDB over CSV/Parquet, out of core; docs/ANALYSIS.md "Engines"). Both give
the pipeline the same `pressure.Pressure` and the same numbers; `auto` takes the
columnar one for large CSV/Parquet timelines, where memory is the limit."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ctdrill.analysis.columnar_source import SUFFIXES, Unsupported
from ctdrill.analysis.loaders import load_timeline
from ctdrill.analysis.pressure import InMemory, Pressure
from ctdrill.errors import InvalidInput

ENGINES = ("auto", "duckdb", "pandas")
AUTO_BYTES = 64 * 2**20
"""`auto` reads timelines of at least this many bytes (all CSV/Parquet) with DuckDB: below
it the in-memory engine is as fast and its errors name the row."""


def choose(paths: Sequence[Path], engine: str, in_memory: bool) -> str:
    """`duckdb` or `pandas` for these files; `in_memory`: the caller needs the rows
    (per-order features)."""
    if engine not in ENGINES:
        raise InvalidInput(f"engine {engine!r} is not one of {', '.join(ENGINES)}",
                           "use auto, duckdb or pandas")
    columnar = all(p.suffix.lower() in SUFFIXES for p in paths)
    if engine == "duckdb" and not columnar:
        raise InvalidInput("the duckdb engine reads CSV and Parquet timelines only",
                           "use engine auto or pandas for journals and JSON lines")
    if engine == "duckdb" and in_memory:
        raise InvalidInput("per-order features need the timeline in memory",
                           "use engine auto or pandas with --features")
    if engine != "auto":
        return engine
    big = sum(p.stat().st_size for p in paths if p.is_file()) >= AUTO_BYTES
    return "duckdb" if columnar and big and not in_memory else "pandas"


@contextmanager
def open_timeline(paths: Sequence[Path], *, engine: str = "auto", in_memory: bool = False,
                  skipped: Callable[[Path, str], None] | None = None,
                  episode_window_s: float | None = None) -> Iterator[Pressure]:
    """The timeline files behind the chosen engine, closed (and its spill files removed)
    on exit. A file the columnar engine cannot read (times as free text) goes to the
    in-memory one under `auto`."""
    from ctdrill.analysis.columnar import ColumnarTimeline

    chosen = choose(paths, engine, in_memory)
    if chosen == "duckdb":
        try:
            columnar = ColumnarTimeline(paths, episode_window_s=episode_window_s)
        except Unsupported as exc:
            if engine == "duckdb":
                raise InvalidInput(f"the duckdb engine cannot read {exc}",
                                   "use engine auto or pandas") from exc
        else:
            with columnar:
                yield columnar
            return
    yield InMemory(load_timeline(paths, skipped=skipped))
