"""The columnar, out-of-core engine for the heavy stages of `ctdrill analyze`: the
timeline files are read, checked and split by host by DuckDB, so the whole timeline never
sits in Python memory; one host at a time comes back, in time order, for labelling.
DuckDB runs under a memory limit and spills to a temporary directory of the run instead
of growing (docs/ANALYSIS.md "Engines").

1. Open: each CSV/Parquet file is scanned once by DuckDB (columns resolved, every value
   checked, rows per host, time span and unit) - the report's inputs and errors; a
   Parquet file whose footer says the same (`columnar_meta`) is not scanned, and its
   float columns are checked host by host as they are read in step 3.
2. Partition: one streaming pass per file writes the log's hosts' samples (host code,
   time, CTR, drops) as Parquet partitioned by host into the run's temporary directory
   (a hash partition, no global sort: the cheap way to group 300M rows). A Parquet
   file already clustered by host (its row groups' host min/max say so) is not
   partitioned: each host is read from it with a filter that skips other row groups.
3. Per host: DuckDB reads that host's partition, differences the drop counter within
   each file in time order and returns the samples sorted; `labels.label_orders` and
   `labels.episode_windows` label that host's orders: the same code and arithmetic as
   the in-memory engine, so the same labels, bit for bit, in memory two hosts at a time
   (two threads, each reading and labelling one host).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ctdrill.analysis import columnar_source as src
from ctdrill.analysis.columnar_meta import footer_stats
from ctdrill.analysis.data import CANCEL_REPLACE, F64, I64, OrderLog, Timeline
from ctdrill.analysis.labels import (
    LOW,
    MID,
    UNOBSERVED,
    Labels,
    episode_windows,
    label_orders,
    prefixes,
)
from ctdrill.analysis.loaders import drops_per_second, sort_order
from ctdrill.analysis.pressure import Flags
from ctdrill.errors import InvalidInput

MEMORY_LIMIT = "2GB"
"""DuckDB's own budget (its buffers, sorts, hash tables); past it, it spills to disk."""
LABEL_WORKERS = 2
"""Hosts read and labelled at once: two hosts' samples in memory at a time, as when one
thread read ahead while another labelled."""


class ColumnarTimeline:
    """CSV/Parquet timeline files behind DuckDB (implements `pressure.Pressure`).

    Opening scans each file once (columns, values, hosts, span), or reads its Parquet
    footer (`columnar_meta.footer_stats`); `label` partitions and
    labels host by host. With `episode_window_s` set, `label` also finds the orders just
    before and after an episode in the same pass (when the log has cancel/replace
    counts), which `episode_windows` then returns without reading the files again."""

    def __init__(self, paths: Sequence[Path], *, memory_limit: str = MEMORY_LIMIT,
                 temp_root: Path | None = None, episode_window_s: float | None = None,
                 threads: int | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="ctdrill-analyze-", dir=temp_root)
        self._con = duckdb.connect(":memory:", config={
            "memory_limit": memory_limit, "temp_directory": str(Path(self._tmp.name) / "spill"),
            "preserve_insertion_order": True, "threads": threads or os.cpu_count() or 1})
        try:
            self._con.execute("SET enable_progress_bar = false")  # no bar on stderr
            self._con.execute("SET TimeZone = 'UTC'")  # naive timestamps are UTC
            self._files = [(p, src.resolve(self._con, p)) for p in paths]
            self._stats = [footer_stats(self._con, p, c) or src.scan(self._con, p, c)
                           for p, c in self._files]
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
        # per (ctr_high, window): the log they were found for (by identity) and the flags
        self._episodes: dict[tuple[float, float], tuple[OrderLog, tuple[Flags, Flags]]] = {}
        self._parted: OrderLog | None = None  # the log whose hosts are partitioned
        self._reading = threading.Lock()  # one query at a time on the connection

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
        """`labels.label_orders`, one host's samples in memory at a time."""
        window = self._window if CANCEL_REPLACE in orders.outcomes else None
        labels, near = self._run(orders, ctr_high, ctr_low, window)
        if near is not None and window is not None:
            self._episodes[(ctr_high, window)] = (orders, near)
        return labels

    def episode_windows(self, orders: OrderLog, labels: Labels, ctr_high: float,
                        window_s: float) -> tuple[Flags, Flags]:
        """`labels.episode_windows`, from the sweep `label` ran (or a new one)."""
        key = (ctr_high, window_s)
        if key not in self._episodes or self._episodes[key][0] is not orders:
            _, near = self._run(orders, ctr_high, ctr_high, window_s)
            assert near is not None
            self._episodes[key] = (orders, near)
        before, after = self._episodes[key][1]
        outside = (labels.label == LOW) | (labels.label == MID)
        return before & outside, after & outside

    def _run(self, orders: OrderLog, ctr_high: float, ctr_low: float,
             window: float | None) -> tuple[Labels, tuple[Flags, Flags] | None]:
        """Label every order host by host, and with `window` flag those with a high
        sample within it after (before an episode) and before (after one) their window
        (labels.episode_windows, before its mid/low filter). Hosts run side by side on
        `LABEL_WORKERS` threads (DuckDB reads one host while numpy labels another, or
        two are labelled at once; both release the GIL): each host writes only its own
        orders' entries, so the result does not depend on which finishes first."""
        n = len(orders)
        out = _HostLabels(np.full(n, UNOBSERVED, dtype=np.int8), np.zeros(n),
                          np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
        # by host, then by start: sorted keys make each host's searchsorted calls walk
        # its samples forward instead of jumping (per-order results do not depend on it)
        by_host = np.lexsort((orders.start, orders.host))
        bounds = np.searchsorted(orders.host[by_host], np.arange(len(orders.hosts) + 1))
        parts = self._partition(orders)

        def one(code: int) -> bool:
            tl = self._host_timeline(orders, code, parts)
            if tl is None:
                return False
            idx = by_host[bounds[code]:bounds[code + 1]]
            return _label_host(orders, code, idx, tl, (ctr_high, ctr_low), window, out)

        with ThreadPoolExecutor(max_workers=LABEL_WORKERS,
                                thread_name_prefix="ctdrill-label") as pool:
            seen = list(pool.map(one, range(len(orders.hosts))))
        ordered = tuple(h for h, ok in zip(orders.hosts, seen, strict=True) if ok)
        near = None if window is None else (out.before, out.after)
        return Labels(out.label, out.exposure, ordered), near

    def _host_timeline(self, orders: OrderLog, code: int, parts: Path) -> Timeline | None:
        """One host of the log (its one-host Timeline, None without samples), from the
        partitions (written once per log) or the host-clustered files: each file's rows
        sorted by time and its drop counter differenced, then the files merged
        (`loaders.merge_timelines`' order). The queries take turns on the one
        connection: DuckDB parallelises each itself, and a cursor per thread (two reads
        at once) went with a 7.3 GiB peak at 10M orders (docs/ANALYSIS.md)."""
        name = orders.hosts[code]
        pieces = []
        for f, ((path, cols), st) in enumerate(zip(self._files, self._stats, strict=True)):
            if st.clustered:
                if st.rows.get(name, 0) == 0:
                    continue
                query = src.canonical(path, cols, st, None, host=name)
            else:
                files = sorted(str(p) for p in parts.glob(f"f{f}/h={code}/*.parquet"))
                if not files:
                    continue
                listed = "[" + ", ".join(src.quote_literal(p) for p in files) + "]"
                query = f"SELECT t, ctr, x FROM read_parquet({listed})"
            with self._reading:
                got = self._con.execute(query).fetchnumpy()
            if not all(np.isfinite(got[c]).all() for c in st.check):
                self._fail(path, cols)
            pieces.append(_piece(got, cols.drops is not None))
        if not pieces:
            return None
        t, ctr, nfd = (np.concatenate([p[i] for p in pieces]) for i in range(3))
        if len(pieces) > 1:
            order = sort_order(np.zeros(t.size, dtype=np.int64), t)
            t, ctr, nfd = t[order], ctr[order], nfd[order]
        return Timeline(self._source, (name,), np.array([0, t.size], dtype=np.int64),
                        t, ctr, nfd)

    def _fail(self, path: Path, cols: src.Columns) -> None:
        """A value the footer could not vouch for is NaN or infinite: the full scan
        names the column and counts the rows, as when it runs on opening."""
        with self._reading:
            src.scan(self._con, path, cols)
        raise InvalidInput(f"{path}: a value that is not a number", "fix or drop that row")

    def _partition(self, orders: OrderLog) -> Path:
        """The log's hosts' samples as Parquet partitioned by host code (f<i>/h=<code>/),
        each file's rows in file order."""
        root = Path(self._tmp.name) / "hosts"
        if self._parted is orders:
            return root
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        shared = [h for h in orders.hosts if self._rows.get(h, 0) > 0]
        codes = np.array([orders.hosts.index(h) for h in shared], dtype=np.int32)
        self._con.register("ctd_hostmap", pa.table({"code": codes, "name": shared}))
        for f, ((path, cols), st) in enumerate(zip(self._files, self._stats, strict=True)):
            if st.clustered:
                continue  # read host by host from the file itself
            query = src.canonical(path, cols, st, "ctd_hostmap")
            self._con.execute(f"COPY ({query}) TO {src.quote_literal(str(root / f'f{f}'))} "
                              "(FORMAT parquet, PARTITION_BY (h))")
        self._parted = orders
        return root


@dataclass(frozen=True)
class _HostLabels:
    """The per-order results every host's labelling writes its own entries of."""

    label: NDArray[np.int8]
    exposure: F64
    before: Flags
    after: Flags


def _label_host(orders: OrderLog, code: int, idx: I64, tl: Timeline,
                thresholds: tuple[float, float], window: float | None,
                out: _HostLabels) -> bool:
    """`labels.label_orders` (and with `window` the episode flags) for the orders `idx`
    of host `code` against its samples `tl`; True if they met."""
    ctr_high, ctr_low = thresholds
    one = _one_host(orders, code, idx)
    sums = prefixes(tl, ctr_high, ctr_low)  # once for both: the same counts
    got = label_orders(one, tl, ctr_high, ctr_low, sums=sums)
    out.label[idx], out.exposure[idx] = got.label, got.exposure
    if window is not None:
        every = Labels(np.full(idx.size, LOW, dtype=np.int8), got.exposure,
                       got.shared_hosts, got.slices)
        b, a = episode_windows(one, tl, every, ctr_high, window, sums.high)
        out.before[idx], out.after[idx] = b, a
    return bool(got.shared_hosts)


def _piece(got: dict[str, Any], drops: bool) -> tuple[F64, F64, F64]:
    """One file's rows of one host, in file order -> sorted by time (stable), with drops
    per second (`loaders.drops_per_second`) or the file's own rate."""
    t = np.asarray(got["t"], dtype=np.float64)
    ctr, x = np.asarray(got["ctr"], dtype=np.float64), np.asarray(got["x"], dtype=np.float64)
    if not (t[1:] >= t[:-1]).all():  # `sort_order` for one host: stable by time
        order = np.argsort(t, kind="stable")
        t, ctr, x = t[order], ctr[order], x[order]
    if not drops:
        return t, ctr, x
    first = np.zeros(t.size, dtype=bool)
    first[:1] = True
    return t, ctr, drops_per_second(first, t, x)


def _one_host(orders: OrderLog, code: int, idx: I64) -> OrderLog:
    """The orders `idx` (all of host `code`) with what labelling reads: host, start, end."""
    start, end = orders.start[idx], orders.end[idx]
    return OrderLog(orders.source, (orders.hosts[code],), np.zeros(idx.size, dtype=np.int64),
                    start, end, start, start, start, start)
