"""Label each order by the conntrack pressure on its host while it was working.

The rule is the drills' (docs/PROBE.md): *high* when any sample in the order's window
shows CTR >= ctr_high or new-flow drops, *low* when every sample shows CTR < ctr_low and
no drops, *mid* otherwise (left out rather than guessed), *unobserved* without samples.
The window is [start - pad, end + pad], pad = half the host's median sample interval, so
a short order still sees the sample nearest to it. A step timeline (watch transitions)
holds each state until the next, so an order sees the state in force at its start and
every change before its end. Vectorised: per-host prefix sums of the
flags and two searchsorted calls per host, O((N + M) log M) for N orders, M samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ctdrill.analysis.data import F64, I64, OrderLog, Timeline
from ctdrill.metrics.quantile import nearest_rank

UNOBSERVED, LOW, HIGH, MID = -1, 0, 1, 2


@dataclass(frozen=True)
class Labels:
    """Per-order label (UNOBSERVED/LOW/HIGH/MID) and the share of its samples that were
    high (exposure, for reporting dose)."""

    label: NDArray[np.int8]
    exposure: F64
    shared_hosts: tuple[str, ...]

    def counts(self) -> dict[str, int]:
        names = {UNOBSERVED: "unobserved", LOW: "low", HIGH: "high", MID: "mid"}
        return {name: int((self.label == code).sum()) for code, name in names.items()}


def label_orders(orders: OrderLog, timeline: Timeline, ctr_high: float = 0.9,
                 ctr_low: float = 0.7, nfd_min: float = 0.0) -> Labels:
    """Label every order of `orders` against `timeline` (hosts matched by name)."""
    n = len(orders)
    label = np.full(n, UNOBSERVED, dtype=np.int8)
    exposure = np.zeros(n, dtype=np.float64)
    high_flag = (timeline.ctr >= ctr_high) | (timeline.nfd_per_s > nfd_min)
    not_low = high_flag | (timeline.ctr >= ctr_low)
    hi_cum = np.concatenate([[0], np.cumsum(high_flag, dtype=np.int64)])
    nl_cum = np.concatenate([[0], np.cumsum(not_low, dtype=np.int64)])
    tl_index = {h: i for i, h in enumerate(timeline.hosts)}
    by_host = np.argsort(orders.host, kind="stable")
    bounds = np.searchsorted(orders.host[by_host], np.arange(len(orders.hosts) + 1))
    shared = []
    for code, name in enumerate(orders.hosts):
        j = tl_index.get(name)
        if j is None:
            continue
        lo_off, hi_off = int(timeline.offsets[j]), int(timeline.offsets[j + 1])
        if hi_off - lo_off == 0:
            continue
        shared.append(name)
        idx: I64 = by_host[bounds[code]:bounds[code + 1]]
        t = timeline.t[lo_off:hi_off]
        if timeline.step:
            first = np.maximum(np.searchsorted(t, orders.start[idx], side="right") - 1, 0)
            first += lo_off
            last = np.searchsorted(t, orders.end[idx], side="right") + lo_off
        else:
            step = nearest_rank(np.diff(t).tolist(), 0.5) if t.size > 1 else None
            pad = 0.5 * step if step is not None else 0.5
            first = np.searchsorted(t, orders.start[idx] - pad, side="left") + lo_off
            last = np.searchsorted(t, orders.end[idx] + pad, side="right") + lo_off
        seen = last - first
        highs = hi_cum[last] - hi_cum[first]
        not_lows = nl_cum[last] - nl_cum[first]
        lab = np.full(idx.size, MID, dtype=np.int8)
        lab[highs > 0] = HIGH
        lab[(seen > 0) & (not_lows == 0)] = LOW
        lab[seen == 0] = UNOBSERVED
        label[idx] = lab
        exposure[idx] = np.divide(highs, seen, out=np.zeros(idx.size), where=seen > 0)
    return Labels(label, exposure, tuple(shared))
