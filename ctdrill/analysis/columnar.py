"""The columnar, out-of-core engine for the heavy stages of `ctdrill analyze`: the
timeline is read, differenced per host and matched to each order's window by DuckDB SQL
over the CSV/Parquet files, so it never sits in Python memory; only per-order results
(label, exposure, episode flags) come back as arrays. DuckDB runs under a memory limit
and spills to a temporary directory of the run instead of growing (docs/ANALYSIS.md
"Engines").

The labelling rule and its numbers are `labels.label_orders`'s, stated as two passes:

1. per file, per host in time order: CTR, the drop counter differenced (a reset counts
   as no drops), the high and not-low flags, and the gap to the previous sample;
2. the pad per host (half the nearest-rank median gap), then one sweep per host over the
   samples and the orders' window edges sorted together: running counts of samples,
   high and not-low samples read at each edge give what the window holds. An edge
   [a sorts before a sample at a (samples with t < a lie before the window), an edge b]
   after one (t <= b is inside): the two `searchsorted` sides of `labels.rows_seen`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ctdrill.analysis import columnar_source as src
from ctdrill.analysis.data import CANCEL_REPLACE, OrderLog
from ctdrill.analysis.labels import HIGH, LOW, MID, UNOBSERVED, Labels
from ctdrill.analysis.pressure import Flags

MEMORY_LIMIT = "2GB"
"""DuckDB's own budget (its buffers, sorts, hash tables); past it, it spills to disk."""
# (slot, kind, edge): kind 0 sorts before samples at the same time ([a), 2 after (b]).
LABEL_EDGES = ((0, 0, "o.s - p.pad"), (1, 2, "o.e + p.pad"))
EPISODE_EDGES = ((2, 0, "o.e + p.pad"), (3, 2, "(o.e + p.pad) + {w}"),
                 (4, 0, "(o.s - p.pad) - {w}"), (5, 2, "o.s - p.pad"))


class ColumnarTimeline:
    """CSV/Parquet timeline files behind DuckDB (implements `pressure.Pressure`).

    Opening scans each file once (columns, values, hosts, span); `label` runs the two
    passes. With `episode_window_s` set, `label` also finds the orders just before and
    after an episode in the same sweep (when the log has cancel/replace counts)."""

    def __init__(self, paths: Sequence[Path], *, memory_limit: str = MEMORY_LIMIT,
                 temp_root: Path | None = None, episode_window_s: float | None = None,
                 threads: int | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="ctdrill-analyze-", dir=temp_root)
        self._con = duckdb.connect(":memory:", config={
            "memory_limit": memory_limit, "temp_directory": str(Path(self._tmp.name) / "spill"),
            "preserve_insertion_order": False, "threads": threads or os.cpu_count() or 1})
        try:
            self._files = [(p, src.resolve(self._con, p)) for p in paths]
            self._stats = [src.scan(self._con, p, c) for p, c in self._files]
        except BaseException:
            self.close()
            raise
        self._source = ", ".join(str(p) for p in paths)
        rows: dict[str, int] = {}
        for st in self._stats:
            for name, n in st.rows.items():
                rows[name] = rows.get(name, 0) + n
        self._rows = rows
        self._window = episode_window_s
        self._episodes: dict[tuple[int, float, float], tuple[Flags, Flags]] = {}

    @property
    def source(self) -> str:
        return self._source

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(sorted(self._rows))

    def __len__(self) -> int:
        return sum(self._rows.values())

    def span(self) -> tuple[float, float]:
        return (min(s.t_min for s in self._stats), max(s.t_max for s in self._stats))

    def close(self) -> None:
        self._con.close()
        self._tmp.cleanup()

    def __enter__(self) -> ColumnarTimeline:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def label(self, orders: OrderLog, ctr_high: float, ctr_low: float) -> Labels:
        """`labels.label_orders`, computed by DuckDB over the files."""
        window = self._window if CANCEL_REPLACE in orders.outcomes else None
        labels, near = self._run(orders, ctr_high, ctr_low, window)
        if near is not None and window is not None:
            self._episodes[(id(orders), ctr_high, window)] = near
        return labels

    def episode_windows(self, orders: OrderLog, labels: Labels, ctr_high: float,
                        window_s: float) -> tuple[Flags, Flags]:
        """`labels.episode_windows`, from the sweep `label` ran (or a new one)."""
        key = (id(orders), ctr_high, window_s)
        if key not in self._episodes:
            _, near = self._run(orders, ctr_high, ctr_high, window_s)
            assert near is not None
            self._episodes[key] = near
        before, after = self._episodes[key]
        outside = (labels.label == LOW) | (labels.label == MID)
        return before & outside, after & outside

    def _run(self, orders: OrderLog, ctr_high: float, ctr_low: float,
             window: float | None) -> tuple[Labels, tuple[Flags, Flags] | None]:
        """Both passes: the labels, and with `window` the orders with a high sample
        within it after (before an episode) and before (after one) their window."""
        shared = tuple(h for h in orders.hosts if self._rows.get(h, 0) > 0)
        codes = np.array([orders.hosts.index(h) for h in shared], dtype=np.int32)
        self._con.register("ctd_hostmap", pa.table({"code": codes, "name": list(shared)}))
        rows = np.flatnonzero(np.isin(orders.host, codes))
        self._con.register("ctd_o", pa.table({
            "i": rows, "h": orders.host[rows].astype(np.int32), "s": orders.start[rows],
            "e": orders.end[rows]}))
        try:
            self._samples(ctr_high, ctr_low)
            seen, res = self._sweep(len(orders), window)
        finally:
            self._con.execute("DROP TABLE IF EXISTS ctd_s")
        label, exposure = _labels(seen, res["highs"], res["notlows"])
        near = None if window is None else (res["before"] > 0, res["after"] > 0)
        return Labels(label, exposure, shared), near

    def _samples(self, ctr_high: float, ctr_low: float) -> None:
        """Pass 1: table ctd_s(h, t, hi, nl, dt) of the log's hosts, and ctd_pad."""
        parts = [src.canonical(p, c, st, "ctd_hostmap", ctr_high, ctr_low)
                 for (p, c), st in zip(self._files, self._stats, strict=True)]
        if len(parts) == 1:
            body = f"SELECT h, t, hi, nl, dt FROM ({parts[0]})"
        else:  # the gap between samples of the merged timeline, across files
            union = " UNION ALL ".join(f"SELECT h, t, hi, nl FROM ({q})" for q in parts)
            body = (f"SELECT h, t, hi, nl, t - lag(t) OVER (PARTITION BY h ORDER BY t) "
                    f"AS dt FROM ({union})")
        self._con.execute(f"CREATE OR REPLACE TEMP TABLE ctd_s AS {body}")
        self._con.execute("""
            CREATE OR REPLACE TEMP TABLE ctd_pad AS
            WITH c AS (SELECT h, dt, count(*) AS c FROM ctd_s WHERE dt IS NOT NULL
                       GROUP BY h, dt),
                 cum AS (SELECT h, dt, sum(c) OVER (PARTITION BY h ORDER BY dt) AS cum,
                                sum(c) OVER (PARTITION BY h) AS total FROM c),
                 med AS (SELECT h, min(dt) FILTER (WHERE cum >= ceil(0.5 * total)) AS m
                         FROM cum GROUP BY h)
            SELECT m.code AS h, coalesce(0.5 * med.m, 0.5) AS pad
            FROM ctd_hostmap AS m LEFT JOIN med ON med.h = m.code""")

    def _sweep(self, n: int, window: float | None) -> tuple[Any, dict[str, Any]]:
        """Pass 2: per order, samples, high and not-low samples in its window (and high
        samples in the episode windows); arrays over all n orders (0 off the hosts)."""
        edges = list(LABEL_EDGES) + (list(EPISODE_EDGES) if window is not None else [])
        w = src.double(window) if window is not None else ""
        events = " UNION ALL ".join(
            f"SELECT o.h, {edge.format(w=w)} AS t, {kind} AS k, o.i, {slot} AS slot "
            f"FROM ctd_o AS o JOIN ctd_pad AS p ON p.h = o.h" for slot, kind, edge in edges)
        pick = ", ".join(f"max({col}) FILTER (WHERE slot = {slot}) AS {col}{slot}"
                         for slot, _, _ in edges for col in ("n", "chi", "cnl"))
        got = self._con.execute(f"""
            WITH u AS (
                SELECT h, t, 1 AS k, hi::INTEGER AS hi, nl::INTEGER AS nl,
                       NULL::BIGINT AS i, NULL::INTEGER AS slot FROM ctd_s
                UNION ALL SELECT h, t, k, 0, 0, i, slot FROM ({events})),
            run AS (
                SELECT k, i, slot, sum((k = 1)::INTEGER) OVER w AS n,
                       sum(hi) OVER w AS chi, sum(nl) OVER w AS cnl
                FROM u WINDOW w AS (PARTITION BY h ORDER BY t, k
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
            SELECT i, {pick} FROM run WHERE k <> 1 GROUP BY i""").fetchnumpy()
        idx = np.asarray(got["i"], dtype=np.int64)

        def full(values: Any) -> Any:
            out = np.zeros(n, dtype=np.int64)
            out[idx] = np.asarray(values, dtype=np.int64)
            return out

        seen = full(got["n1"] - got["n0"])
        res = {"highs": full(got["chi1"] - got["chi0"]),
               "notlows": full(got["cnl1"] - got["cnl0"])}
        if window is not None:
            res["before"] = full(got["chi3"] - got["chi2"])
            res["after"] = full(got["chi5"] - got["chi4"])
        return seen, res


def _labels(seen: Any, highs: Any, notlows: Any) -> tuple[Any, Any]:
    """The label rule of `labels.label_orders` on the window counts."""
    label = np.full(seen.size, MID, dtype=np.int8)
    label[highs > 0] = HIGH
    label[(seen > 0) & (notlows == 0)] = LOW
    label[seen == 0] = UNOBSERVED
    exposure = np.divide(highs, seen, out=np.zeros(seen.size), where=seen > 0)
    return label, exposure
