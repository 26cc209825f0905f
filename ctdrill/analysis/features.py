"""Per-order pressure features (`ctdrill analyze --features FILE`, docs/ANALYSIS.md): the
conntrack pressure each order lived through, keyed by the log's own order id, so a desk
joins it to its data and feeds its slippage mean and tail models (the seed: "include
CTR/NFD/OSD signals in slippage mean and tail heads").

An order sees the samples of its host in [start - pad, end + pad], the window its
pressure label uses (pad: half the host's median sample interval). Regimes come from
`regimes` (the regime machine over the host's samples, or a watch stream's own), over
the order's life [start, end]. Pure: a DataFrame out, `export` writes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ctdrill.analysis import regimes as rg
from ctdrill.analysis.config import Config
from ctdrill.analysis.data import F64, I64, OrderLog, Timeline
from ctdrill.analysis.labels import HostSlice, label_orders, prefix, rows_seen
from ctdrill.errors import InvalidInput

LABEL_NAMES = {-1: "unobserved", 0: "low", 1: "high", 2: "mid"}
TIME_COLUMNS = tuple(f"time_{r.value.removeprefix('CT_').lower()}_s" for r in rg.REGIMES)
SAMPLE_COLUMNS = ("ctr_max", "ctr_mean", "nfd_max", "nfd_mean", "table_full_events")
COLUMNS = ("order_id", "host", "pressure_label", "exposure", "samples", *SAMPLE_COLUMNS,
           "regime_start", "regime_end", *TIME_COLUMNS)
REGIME_SOURCE = ("the regime machine of ctdrill/regime/ with its defaults "
                 "(docs/REGIME.md) over each host's samples (CTR and NFD); for a watch "
                 "stream, the regimes it recorded")


def check_keys(orders: OrderLog) -> None:
    """The features file is keyed by order_id: every id present and unique."""
    ids = pd.Series(orders.order_id if orders.order_id is not None else [], dtype=object)
    if ids.isna().any():
        i = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise InvalidInput(f"{orders.source}: column 'order_id' row {i + 1} is empty",
                           "the features file is keyed by order_id: give every order one")
    dup = ids.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InvalidInput(f"{orders.source}: order_id {str(ids.iloc[i])[:40]!r} appears "
                           f"more than once (row {i + 1})",
                           "the features file is keyed by order_id: one row per order")


def window_stats(values: F64, first: I64, last: I64) -> tuple[F64, F64]:
    """Max and mean of values[first:last] per window (NaN for an empty one)."""
    seen = last - first
    if not values.size:
        return np.full(seen.size, np.nan), np.full(seen.size, np.nan)
    ext = np.append(values, values[-1])  # reduceat needs indices below the length
    # reduceat also reduces each gap last[i]:first[i+1]; sorted by first, the gaps add
    # up to at most the timeline, instead of up to orders x timeline
    order = np.argsort(first, kind="stable")
    top = np.empty(seen.size)
    top[order] = np.maximum.reduceat(ext, np.column_stack([first[order],
                                                           last[order]]).ravel())[::2]
    csum = np.concatenate([[0.0], np.cumsum(values)])
    mean = np.divide(csum[last] - csum[first], seen, out=np.full(seen.size, np.nan),
                     where=seen > 0)
    return np.where(seen > 0, top, np.nan), mean


def drop_runs(nfd: F64, hs: HostSlice, first: I64, last: I64) -> F64:
    """Table-full events per window: runs of consecutive samples with new-flow drops
    (the kernel's "table full, dropping packet") that overlap it, counted once each."""
    drop = nfd[hs.lo:hs.hi] > 0
    rise = drop & ~np.concatenate([[False], drop[:-1]])
    f, la = first - hs.lo, last - hs.lo
    seen = la > f
    ongoing = seen & drop[np.minimum(f, drop.size - 1)] & ~rise[np.minimum(f, drop.size - 1)]
    rise_cum = prefix(rise)
    return np.where(seen, rise_cum[la] - rise_cum[f] + ongoing, np.nan)


def _host(cols: dict[str, Any], orders: OrderLog, timeline: Timeline, hs: HostSlice) -> None:
    """Fill one host's rows of every column."""
    idx, start, end = hs.orders, orders.start[hs.orders], orders.end[hs.orders]
    first, last = rows_seen(timeline, hs, start - hs.pad, end + hs.pad)
    cols["samples"][idx] = last - first
    t = timeline.t[hs.lo:hs.hi]
    if not timeline.step:
        f, la = first - hs.lo, last - hs.lo
        cols["ctr_max"][idx], cols["ctr_mean"][idx] = window_stats(
            timeline.ctr[hs.lo:hs.hi], f, la)
        cols["nfd_max"][idx], cols["nfd_mean"][idx] = window_stats(
            timeline.nfd_per_s[hs.lo:hs.hi], f, la)
        cols["table_full_events"][idx] = drop_runs(timeline.nfd_per_s, hs, first, last)
    if timeline.step and timeline.regime is not None:
        levels = timeline.regime[hs.lo:hs.hi]
        lo, hi = min(float(t[0]), float(start.min())), max(float(t[-1]), float(end.max()))
    else:
        levels = rg.machine_levels(t, timeline.ctr[hs.lo:hs.hi],
                                   timeline.nfd_per_s[hs.lo:hs.hi])
        lo, hi = float(t[0]) - hs.pad, float(t[-1]) + hs.pad
    bounds, seg = rg.segments(t, levels, lo, hi)
    names = np.array([r.value for r in rg.REGIMES] + [None], dtype=object)
    cols["regime_start"][idx] = names[rg.level_at(bounds, seg, start)]
    cols["regime_end"][idx] = names[rg.level_at(bounds, seg, end)]
    occ = rg.occupancy(bounds, seg, start, end)
    for j, name in enumerate(TIME_COLUMNS):
        cols[name][idx] = occ[:, j]


def pressure_features(orders: OrderLog, timeline: Timeline, cfg: Config) -> Any:
    """One row per order (the log's order), columns COLUMNS; NaN/None where the order's
    host has no samples (and CTR/NFD columns for a watch stream, which has none)."""
    n = len(orders)
    labels = label_orders(orders, timeline, cfg.ctr_high, cfg.ctr_low)
    cols: dict[str, Any] = {c: np.full(n, np.nan) for c in (*SAMPLE_COLUMNS, *TIME_COLUMNS)}
    cols["samples"] = np.zeros(n, dtype=np.int64)
    cols["regime_start"] = np.full(n, None, dtype=object)
    cols["regime_end"] = np.full(n, None, dtype=object)
    for hs in labels.slices.values():
        _host(cols, orders, timeline, hs)
    ids = orders.order_id if orders.order_id is not None else np.arange(n)
    frame = {"order_id": ids, "host": np.asarray(orders.hosts, dtype=object)[orders.host],
             "pressure_label": np.array([LABEL_NAMES[int(v)] for v in range(-1, 3)],
                                        dtype=object)[labels.label + 1],
             "exposure": np.where(labels.label >= 0, labels.exposure, np.nan), **cols}
    return pd.DataFrame({c: frame[c] for c in COLUMNS})
