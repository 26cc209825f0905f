"""Matching high- to low-pressure orders within host, on spread, realized volatility,
participation and time of day.

Markets that fill the conntrack table (bursts of flows) are also volatile, wide and busy,
and those raise implementation shortfall by themselves. So a high-pressure order is only
compared with low-pressure orders of the *same host* (and, for the canary, the same
period) that traded in similar conditions. Two methods, both giving ATT weights (a high
order 1, a low order the share of high orders it stands for), which also give the
controls the high orders' host mix (the weighted analogue of host fixed effects):

- `nn` (default): the k nearest low orders on standardized covariates (time of day on
  the circle), within a caliper; close even in the sparse tails of volatility, where the
  shortfall tail lives;
- `cem`: coarsened exact matching on quantile bins; transparent, but a wide top bin
  leaves within-bin imbalance that shows in the tails of a confounded sample.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from ctdrill.analysis.data import F64, I64
from ctdrill.metrics.quantile import weighted_nearest_rank

COVARIATES = ("spread_bps", "volatility", "participation", "hour_of_day")


@dataclass(frozen=True)
class Balance:
    """Standardized mean difference of one covariate before and after matching."""

    covariate: str
    smd_before: float
    smd_after: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Pairs:
    """Who stands in for whom: each entry is a low order (`control`), its share of a high
    order's counterfactual, the covariates of what it stands for (`target_z`, for the
    bias correction) and one high order of the same cell (`anchor`, for grouping)."""

    control: I64
    share: F64
    target_z: F64
    anchor: I64


@dataclass(frozen=True)
class Matching:
    method: str
    weight: F64  # 1 for a matched high order, the share of high orders a low one stands for
    cells: int  # matching cells (host [x period] for nn, strata for cem) with both sides
    matched_high: int
    matched_low: int
    dropped_high: int
    balance: tuple[Balance, ...]
    z: F64  # standardized covariates used for distances and the bias correction
    pairs: Pairs

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "cells": self.cells, "matched_high": self.matched_high,
                "matched_low": self.matched_low, "dropped_high": self.dropped_high,
                "balance": [b.to_json() for b in self.balance]}


def quantile_bins(x: F64, bins: int) -> I64:
    """Bin codes 0..bins-1 by pooled quantiles; ties collapse bins instead of splitting.

    Cuts are nearest-rank quantiles (metrics/quantile.py), so each is an observed value
    and belongs to the bin it closes: bin k holds (cut k-1, cut k]."""
    if bins <= 1 or not x.size:
        return np.zeros(x.size, dtype=np.int64)
    ones = np.ones_like(x)
    cuts = np.unique([weighted_nearest_rank(x, ones, k / bins) for k in range(1, bins)])
    return np.asarray(np.searchsorted(cuts, x, side="left"), dtype=np.int64)


def strata_codes(host: I64, covs: F64, hour: F64, bins: int, tod_bins: int,
                 extra: I64 | None = None) -> I64:
    """One integer per order naming its stratum: host x covariate bins x time-of-day bin
    (x extra group, e.g. the canary period)."""
    key = host.astype(np.int64)
    if extra is not None:
        key = key * (int(extra.max()) + 1) + extra
    for j in range(covs.shape[1]):
        key = key * bins + quantile_bins(covs[:, j], bins)
    tod = np.minimum((hour * tod_bins / 24.0).astype(np.int64), tod_bins - 1)
    key = key * tod_bins + tod
    _, inverse = np.unique(key, return_inverse=True)
    return np.asarray(inverse.ravel(), dtype=np.int64)


def cem_weights(stratum: I64, treated: NDArray[np.bool_]) -> F64:
    """ATT weights: high orders 1, low orders n_high/n_low of their stratum, 0 where a
    stratum lacks either side."""
    n_t = np.bincount(stratum, weights=treated.astype(np.float64))
    n_c = np.bincount(stratum, weights=(~treated).astype(np.float64))
    both = (n_t > 0) & (n_c > 0)
    ratio = np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c > 0)
    w = np.where(treated, 1.0, ratio[stratum])
    return np.asarray(np.where(both[stratum], w, 0.0), dtype=np.float64)


def cem_pairs(stratum: I64, treated: NDArray[np.bool_], w: F64, z: F64) -> Pairs:
    """Each matched low order stands for its stratum's high orders: its target covariates
    are their mean, its anchor the first of them."""
    n_s = int(stratum.max()) + 1
    t_rows = np.flatnonzero(treated & (w > 0))
    n_t = np.bincount(stratum[t_rows], minlength=n_s).astype(np.float64)
    sums = np.column_stack([np.bincount(stratum[t_rows], weights=z[t_rows, j],
                                        minlength=n_s) for j in range(z.shape[1])])
    mean_z = np.asarray(sums, dtype=np.float64) / np.maximum(n_t, 1)[:, None]
    anchor = np.full(n_s, -1, dtype=np.int64)
    anchor[stratum[t_rows][::-1]] = t_rows[::-1]
    controls = np.flatnonzero(~treated & (w > 0))
    return Pairs(controls, w[controls], mean_z[stratum[controls]], anchor[stratum[controls]])


def smd(x: F64, treated: NDArray[np.bool_], w: F64 | None = None) -> float:
    """(mean high - weighted mean low) / pooled unweighted SD."""
    xt, xc = x[treated], x[~treated]
    if not xt.size or not xc.size:
        return float("nan")
    sd = float(np.sqrt((xt.var() + xc.var()) / 2)) or 1.0
    if w is None:
        return float((xt.mean() - xc.mean()) / sd)
    wt, wc = w[treated], w[~treated]
    if wt.sum() <= 0 or wc.sum() <= 0:
        return float("nan")
    return float((np.average(xt, weights=wt) - np.average(xc, weights=wc)) / sd)


def standardized(covs: F64, hour: F64) -> F64:
    """Covariates for distances: z-scores, with the hour as a point on a circle so 23:30
    is next to 00:30."""
    angle = 2 * np.pi * hour / 24
    z = np.column_stack([covs, np.sin(angle), np.cos(angle)])
    sd = z.std(axis=0)
    z -= z.mean(axis=0)  # in place: the same values, no second and third N x 5 array
    z /= np.where(sd > 0, sd, 1.0)
    return np.asarray(z, dtype=np.float64)


def _neighbours(z: F64, t_idx: I64, c_idx: I64, k: int) -> tuple[F64, I64]:
    """The k nearest low orders (indexes into c_idx) of each high order of one cell, and
    their distances, t_idx.size x k.

    The tree keeps scipy's default median splits: a sliding-midpoint tree builds in half
    the time, but where two low orders lie at exactly the same distance the tree's shape
    decides which one is returned. Every core queries (workers=-1): each high order's
    search is independent, so the neighbours and their order are those of one worker."""
    kk = min(k, c_idx.size)
    tree = cKDTree(z[c_idx])
    dist, nb = tree.query(z[t_idx], k=kk, workers=-1)
    return dist.reshape(t_idx.size, kk), nb.reshape(t_idx.size, kk)


def _cells(group: I64, treated: NDArray[np.bool_]) -> list[tuple[I64, I64]]:
    """(high rows, low rows) of every group that has both, in group order."""
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    split = ((rows[treated[rows]], rows[~treated[rows]]) for rows in np.split(order, bounds))
    return [(t_idx, c_idx) for t_idx, c_idx in split if t_idx.size and c_idx.size]


def nn_weights(group: I64, z: F64, treated: NDArray[np.bool_], k: int,
               caliper: float) -> tuple[F64, Pairs]:
    """ATT weights from k-nearest-neighbour matching with replacement inside each group;
    neighbours farther than `caliper` (standardized units) do not count, and a high order
    with none left is dropped. Two groups' trees are built at a time (a build runs on
    one core, outside the GIL); results are taken in group order, so the same sums."""
    w = np.zeros(treated.size)
    found: list[tuple[I64, I64, F64]] = []
    cells = _cells(group, treated)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ctdrill-match") as pool:
        searched = pool.map(lambda cell: _neighbours(z, cell[0], cell[1], k), cells)
        for (t_idx, c_idx), (dist, nb) in zip(cells, searched, strict=True):
            near = dist <= caliper
            used = near.sum(axis=1)
            ok = used > 0
            w[t_idx[ok]] = 1.0
            share = np.where(near, 1.0 / np.maximum(used, 1)[:, None], 0.0)
            np.add.at(w, c_idx[nb[ok]].ravel(), share[ok].ravel())
            pick = near & ok[:, None]
            found.append((np.broadcast_to(t_idx[:, None], nb.shape)[pick], c_idx[nb[pick]],
                          share[pick]))
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return w, Pairs(empty, np.zeros(0), np.zeros((0, z.shape[1])), empty)
    anchor = np.concatenate([f[0] for f in found])
    return w, Pairs(np.concatenate([f[1] for f in found]),
                    np.concatenate([f[2] for f in found]), z[anchor], anchor)


def match(host: I64, covs: F64, hour: F64, treated: NDArray[np.bool_], method: str = "nn",
          k: int = 3, caliper: float = 1.0, bins: int = 5, tod_bins: int = 6,
          extra: I64 | None = None, balance: bool = True) -> Matching:
    """ATT weights by `nn` or `cem` within host (x extra); covs columns follow
    COVARIATES[:3]. `balance=False`: no balance table (a caller that reads only the
    weights: eight weighted SMDs over every order are a fifth of a matching's time)."""
    z = standardized(covs, hour)
    if method == "cem":
        cell = strata_codes(host, covs, hour, bins, tod_bins, extra)
        w = cem_weights(cell, treated)
        pairs = cem_pairs(cell, treated, w, z)
    elif method == "nn":
        cell = host.astype(np.int64)
        if extra is not None:
            cell = cell * (int(extra.max()) + 1) + extra
        w, pairs = nn_weights(cell, z, treated, k, caliper)
    else:
        raise ValueError(f"unknown matching method {method!r}")
    matched = w > 0
    columns = [covs[:, j] for j in range(covs.shape[1])] + [hour]
    table = tuple(Balance(name, smd(x, treated), smd(x, treated, w))
                  for name, x in zip(COVARIATES, columns, strict=True)) if balance else ()
    return Matching(
        method=method,
        weight=w,
        cells=int(np.unique(cell[matched & treated]).size),
        matched_high=int((matched & treated).sum()),
        matched_low=int((matched & ~treated).sum()),
        dropped_high=int((~matched & treated).sum()),
        balance=table,
        z=z,
        pairs=pairs,
    )
