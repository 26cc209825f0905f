"""The checking scan's findings for a Parquet timeline from its footer instead of a pass
over every value: rows per host from the row groups that hold one host (their host
min = max; the few mixed groups read, the host column alone), the time range from the
time column's min/max, nulls from its null counts. At 10M orders / 302M samples the scan
was ~20 s of the run; the footer answers in well under a second.

What the footer cannot say is whether a floating column holds NaN or infinity (Parquet
statistics leave NaN out): those columns are named in `FileStats.check`, and the
columnar engine checks them on each host's rows as it reads them for labelling (and
runs the full scan for its exact error when one is bad). Anything unusual - no
statistics, nulls, times at or below zero or of two magnitudes, timestamps, count/max
as floats, long host names (statistics may be truncated) - returns None: the full scan
then runs, as for CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ctdrill.analysis.columnar_source import Columns, FileStats, clustered, scale_of
from ctdrill.analysis.loaders import PARQUET

MAX_NAME = 32
"""Longest host name trusted from statistics (writers may truncate long min/max)."""


def _kind(t: pa.DataType) -> str | None:
    """'int' (always finite), 'float' (may be NaN/inf), or None (not taken here)."""
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    return None


def _plain(t: pa.DataType) -> pa.DataType:
    """A dictionary type's values' type (the host column is read dictionary-encoded)."""
    return t.value_type if pa.types.is_dictionary(t) else t


def _used(cols: Columns) -> dict[str, str]:
    """The file's numeric columns read, by the canonical name of what the engine fetches
    from them (t, ctr, x; count and max both make ctr)."""
    named = {"t": cols.t, "ctr": cols.ctr, "count": cols.count, "max": cols.max,
             "x": cols.nfd if cols.nfd is not None else cols.drops}
    return {k: v for k, v in named.items() if v is not None}


def footer_stats(con: Any, path: Path, cols: Columns) -> FileStats | None:
    """The scan's FileStats from the footer, or None (run the scan)."""
    if path.suffix.lower() not in PARQUET:
        return None
    pf = pq.ParquetFile(path, read_dictionary=[cols.host])
    schema, meta = pf.schema_arrow, pf.metadata
    if meta.num_columns != len(schema) or meta.num_row_groups == 0:
        return None
    where = {name: i for i, name in enumerate(schema.names)}
    used = _used(cols)
    kinds = {k: _kind(schema.field(v).type) for k, v in used.items()}
    if None in kinds.values() or "float" in (kinds.get("count"), kinds.get("max")) \
            or not pa.types.is_string(_plain(schema.field(cols.host).type)):
        return None
    stats = [[meta.row_group(g).column(where[name]).statistics for g in range(meta.num_row_groups)]
             for name in (cols.host, cols.t, *used.values())]
    if any(s is None or not s.has_min_max or s.null_count != 0 for col in stats for s in col):
        return None
    rows = _rows(pf, meta, stats[0], cols.host)
    if rows is None:
        return None
    lo, hi = min(float(s.min) for s in stats[1]), max(float(s.max) for s in stats[1])
    scale = scale_of(lo)
    if lo <= 0 or scale_of(hi) != scale:
        return None
    check = tuple(k for k in ("t", "ctr", "x") if kinds.get(k) == "float")
    return FileStats(rows, scale, lo * scale, hi * scale,
                     clustered(con, path, cols, list(rows)), check)


def _rows(pf: pq.ParquetFile, meta: Any, host_stats: list[Any], host: str
          ) -> dict[str, int] | None:
    """Rows per host: one-host row groups from the footer, the others counted."""
    rows: dict[str, int] = {}
    mixed = []
    for g, s in enumerate(host_stats):
        if not isinstance(s.min, str) or not isinstance(s.max, str) \
                or max(len(s.min), len(s.max)) > MAX_NAME:
            return None
        if s.min == s.max:
            rows[s.min] = rows.get(s.min, 0) + meta.row_group(g).num_rows
        else:
            mixed.append(g)
    for g in mixed:  # one group's host column at a time (dictionary-encoded)
        column = pf.read_row_group(g, columns=[host]).column(0)
        for item in pc.value_counts(column).to_pylist():
            rows[str(item["values"])] = rows.get(str(item["values"]), 0) + int(item["counts"])
    return rows
