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

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ctdrill.analysis.data import F64, I64, OrderLog, Timeline

UNOBSERVED, LOW, HIGH, MID = -1, 0, 1, 2


@dataclass(frozen=True)
class Labels:
    """Per-order label (UNOBSERVED/LOW/HIGH/MID) and the share of its samples that were
    high (exposure, for reporting dose)."""

    label: NDArray[np.int8]
    exposure: F64
    shared_hosts: tuple[str, ...]
    slices: dict[str, HostSlice] = field(default_factory=dict)
    """Per shared host, its orders and timeline rows (`host_slices`), for reuse."""

    def counts(self) -> dict[str, int]:
        names = {UNOBSERVED: "unobserved", LOW: "low", HIGH: "high", MID: "mid"}
        return {name: int((self.label == code).sum()) for code, name in names.items()}


@dataclass(frozen=True)
class HostSlice:
    """One host with orders in the log and samples in the timeline: its orders' indices,
    its timeline rows lo:hi, and the pad that lets a short order see its nearest sample
    (half the median sample interval; 0 for a step timeline, whose state holds)."""

    orders: I64
    lo: int
    hi: int
    pad: float


def host_slices(orders: OrderLog, timeline: Timeline) -> dict[str, HostSlice]:
    """Per host name shared by both inputs (with samples), in the log's host order."""
    tl_index = {h: i for i, h in enumerate(timeline.hosts)}
    by_host = np.argsort(orders.host, kind="stable")
    bounds = np.searchsorted(orders.host[by_host], np.arange(len(orders.hosts) + 1))
    out: dict[str, HostSlice] = {}
    for code, name in enumerate(orders.hosts):
        j = tl_index.get(name)
        if j is None:
            continue
        lo, hi = int(timeline.offsets[j]), int(timeline.offsets[j + 1])
        if hi == lo:
            continue
        pad = 0.0
        if not timeline.step:
            step = median_rank(np.diff(timeline.t[lo:hi])) if hi - lo > 1 else None
            pad = 0.5 * step if step is not None else 0.5
        out[name] = HostSlice(by_host[bounds[code]:bounds[code + 1]], lo, hi, pad)
    return out


def median_rank(values: F64) -> float:
    """`nearest_rank(values, 0.5)` in O(n) without a Python list: a host's millions of
    sample gaps (the same value: the ceil(n/2)-th smallest). Reorders `values` in
    place (the caller's own scratch array: no copy of millions of gaps)."""
    k = min(values.size - 1, max(0, math.ceil(0.5 * values.size) - 1))
    values.partition(k)
    return float(values[k])


def rows_seen(timeline: Timeline, hs: HostSlice, a: F64, b: F64) -> tuple[I64, I64]:
    """Timeline rows first:last that the windows [a, b] see: the samples inside, or, for
    a step timeline, the state in force at a (the first row's before it) and every change
    up to b."""
    t = timeline.t[hs.lo:hs.hi]
    if timeline.step:
        first = np.maximum(np.searchsorted(t, a, side="right") - 1, 0)
    else:
        first = np.searchsorted(t, a, side="left")
    return first + hs.lo, np.searchsorted(t, b, side="right") + hs.lo


def high_samples(timeline: Timeline, ctr_high: float, nfd_min: float = 0.0) -> NDArray[np.bool_]:
    """The drills' high-pressure rule per sample: CTR at or over ctr_high, or drops."""
    return np.asarray((timeline.ctr >= ctr_high) | (timeline.nfd_per_s > nfd_min))


def prefix(flags: NDArray[np.bool_]) -> I64:
    """Prefix sums with a leading 0: flags in rows first:last = p[last] - p[first]."""
    out = np.empty(flags.size + 1, dtype=np.int64)
    out[0] = 0
    np.cumsum(flags, dtype=np.int64, out=out[1:])
    return out


@dataclass(frozen=True)
class Prefixes:
    """A timeline's prefix sums of high samples and of not-low ones (high, or CTR at or
    over ctr_low): what labelling and the episode windows count, made once."""

    high: I64
    not_low: I64


def prefixes(timeline: Timeline, ctr_high: float, ctr_low: float,
             nfd_min: float = 0.0) -> Prefixes:
    high_flag = high_samples(timeline, ctr_high, nfd_min)
    return Prefixes(prefix(high_flag), prefix(high_flag | (timeline.ctr >= ctr_low)))


def label_orders(orders: OrderLog, timeline: Timeline, ctr_high: float = 0.9,
                 ctr_low: float = 0.7, nfd_min: float = 0.0,
                 sums: Prefixes | None = None) -> Labels:
    """Label every order of `orders` against `timeline` (hosts matched by name);
    `sums`: the timeline's `prefixes` for these thresholds, if already made."""
    n = len(orders)
    label = np.full(n, UNOBSERVED, dtype=np.int8)
    exposure = np.zeros(n, dtype=np.float64)
    if sums is None:
        sums = prefixes(timeline, ctr_high, ctr_low, nfd_min)
    hi_cum, nl_cum = sums.high, sums.not_low
    slices = host_slices(orders, timeline)
    for hs in slices.values():
        idx = hs.orders
        first, last = rows_seen(timeline, hs, orders.start[idx] - hs.pad,
                                orders.end[idx] + hs.pad)
        seen = last - first
        highs = hi_cum[last] - hi_cum[first]
        not_lows = nl_cum[last] - nl_cum[first]
        lab = np.full(idx.size, MID, dtype=np.int8)
        lab[highs > 0] = HIGH
        lab[(seen > 0) & (not_lows == 0)] = LOW
        lab[seen == 0] = UNOBSERVED
        label[idx] = lab
        exposure[idx] = np.divide(highs, seen, out=np.zeros(idx.size), where=seen > 0)
    return Labels(label, exposure, tuple(slices), slices)


def episode_windows(orders: OrderLog, timeline: Timeline, labels: Labels, ctr_high: float,
                    window_s: float, high_cum: I64 | None = None
                    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Which orders traded just before and just after a pressure episode (a run of high
    samples) on their host: a high sample within `window_s` after the order's window
    (before), or within `window_s` before it (after). Orders that met the episode itself
    are *during* (label HIGH), unobserved ones neither; an order between two close
    episodes is both before and after. `high_cum`: `Prefixes.high` for ctr_high, if
    already made."""
    n = len(orders)
    before, after = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    hi_cum = prefix(high_samples(timeline, ctr_high)) if high_cum is None else high_cum
    for hs in (labels.slices or host_slices(orders, timeline)).values():
        start, end = orders.start[hs.orders], orders.end[hs.orders]
        first, last = rows_seen(timeline, hs, end + hs.pad, end + hs.pad + window_s)
        before[hs.orders] = hi_cum[last] > hi_cum[first]
        first, last = rows_seen(timeline, hs, start - hs.pad - window_s, start - hs.pad)
        after[hs.orders] = hi_cum[last] > hi_cum[first]
    outside = (labels.label == LOW) | (labels.label == MID)
    return before & outside, after & outside
