"""Vectorised, seeded cluster bootstrap.

Orders in the same pressure episode share its shock, so resampling single orders would
overstate precision. Clusters are (host, time block) cells; each replicate draws one
Poisson(1) weight per cluster (the Poisson bootstrap: no resampling loop, replicate
weights are a B x C matrix). Estimators are written so that a replicate costs a small
matrix product over cluster-level sums rather than a refit over orders:

- the host fixed-effects regression is solved from per-cluster cross-product moments
  (weighted within-host demeaning done on the moments, exactly equal to host dummies);
- weighted quantiles (nearest rank, ctdrill/metrics/quantile.py) sort once and, per
  replicate, cumulate only the upper tail above a split whose lower weight comes from
  one matrix product.

The matching weights are held fixed across replicates (the bootstrap is conditional on
the matched sample); docs/ANALYSIS.md says what that leaves out.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ctdrill.analysis.data import F64, I64
from ctdrill.metrics.quantile import nearest_rank, ranks_of_sorted


@dataclass(frozen=True)
class Clusters:
    """Cluster id per order in a dense (host, block) grid of n_hosts x n_blocks."""

    id: I64
    n_hosts: int
    n_blocks: int

    @property
    def size(self) -> int:
        return self.n_hosts * self.n_blocks


def block_clusters(host: I64, start: F64, n_hosts: int, block_s: float) -> Clusters:
    t0 = float(start.min()) if start.size else 0.0
    block = ((start - t0) // block_s).astype(np.int64)
    n_blocks = int(block.max()) + 1 if block.size else 1
    return Clusters(host * n_blocks + block, n_hosts, n_blocks)


def replicate_weights(seed: int, reps: int, n_clusters: int) -> F64:
    """B x C Poisson(1) cluster weights; the seed makes the CI reproducible. Read-only and
    shared: the CDT and the outcome sections ask for the same grid (a fleet-year is
    hundreds of thousands of clusters, so one B x C matrix is half a GiB)."""
    return _drawn(seed, reps, n_clusters)


@functools.lru_cache(maxsize=1)
def _drawn(seed: int, reps: int, n_clusters: int) -> F64:
    rng = np.random.default_rng(seed)
    out = np.asarray(rng.poisson(1.0, size=(reps, n_clusters)), dtype=np.float64)
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class Moments:
    """Per cluster: the weight, the weighted sums of [x, y] and their weighted cross
    products (`sums`: C x (1 + r + r*r), r = p + q columns, the first p of them x)."""

    sums: F64
    p: int
    r: int


def cluster_moments(x: F64, y: F64, w: F64, clusters: Clusters) -> Moments:
    """The `Moments` of [x, y]: the only pass over the orders `fe_coefficients` makes.

    Rows of weight 0 (unmatched orders) are left out before summing: each would add an
    exact +-0.0 to a running sum that starts at +0.0 and so cannot change it (bincount
    adds in row order, and x + 0.0 == x for every x, a sum of +0.0 included), so the
    moments are bit for bit those over every row, at the cost of the matched ones only
    (x and y are finite: the loaders refuse anything else)."""
    used = np.flatnonzero(w != 0)
    if used.size < w.size:
        x, y, w, cid = x[used], y[used], w[used], clusters.id[used]
    else:
        cid = clusters.id
    p, q = x.shape[1], y.shape[1]
    r = p + q
    c = clusters.size
    out = np.empty((c, 1 + r + r * r))
    out[:, 0] = np.bincount(cid, weights=w, minlength=c)
    for j in range(r):
        zj = x[:, j] if j < p else y[:, j - p]
        wz = w * zj
        out[:, 1 + j] = np.bincount(cid, weights=wz, minlength=c)
        for k in range(j, r):  # the cross products, row-major (j, k), mirrored
            zk = x[:, k] if k < p else y[:, k - p]
            out[:, 1 + r + j * r + k] = np.bincount(cid, weights=wz * zk, minlength=c)
            out[:, 1 + r + k * r + j] = out[:, 1 + r + j * r + k]
    return Moments(out, p, r)


def fe_coefficients(x: F64, y: F64, w: F64, clusters: Clusters,
                    rep_w: F64 | None = None) -> F64:
    """Coefficients of the weighted regression y ~ x + host dummies, for each replicate.

    x is N x p, y is N x q (several outcomes share one solve). Returns R x p x q, R = 1
    (the point estimate) when rep_w is None, else the number of replicates.
    """
    return fe_solve(cluster_moments(x, y, w, clusters), clusters, rep_w)


def fe_solve(moments: Moments, clusters: Clusters, rep_w: F64 | None = None) -> F64:
    """`fe_coefficients` from `cluster_moments`: the point estimate and the replicates
    share one pass over the orders."""
    p, r, c = moments.p, moments.r, clusters.size
    h, b = clusters.n_hosts, clusters.n_blocks
    sums = moments.sums.reshape(h, b, -1)
    weights = np.ones((1, c)) if rep_w is None else rep_w
    # (H, R, B) @ (H, B, m) -> (H, R, m): every replicate's per-host moments at once
    per_host = np.matmul(weights.reshape(-1, h, b).transpose(1, 0, 2), sums)
    n_h = per_host[..., 0]
    s_h = per_host[..., 1:1 + r]
    cross_h = per_host[..., 1 + r:].reshape(h, -1, r, r)
    inv_n = np.divide(1.0, n_h, out=np.zeros_like(n_h), where=n_h > 0)
    within = cross_h.sum(axis=0) - np.einsum("hri,hrj,hr->rij", s_h, s_h, inv_n)
    xx = within[:, :p, :p]
    xy = within[:, :p, p:]
    try:
        return np.asarray(np.linalg.solve(xx, xy), dtype=np.float64)
    except np.linalg.LinAlgError:
        return np.asarray(np.matmul(np.linalg.pinv(xx), xy), dtype=np.float64)


@dataclass(frozen=True)
class Ranked:
    """One group's values in stable sorted order with their weights, clusters and
    cumulative weights: its point quantiles and every replicate's read the same sort."""

    ys: F64
    ws: F64
    cs: I64
    cum: F64


def ranked(y: F64, w: F64, cid: I64) -> Ranked | None:
    """The group's rows of positive weight, sorted once; None when there are none."""
    keep = w > 0
    if not keep.any():
        return None
    order = np.argsort(y[keep], kind="stable")
    ws = w[keep][order]
    return Ranked(y[keep][order], ws, cid[keep][order], np.cumsum(ws))


def point_quantiles(r: Ranked | None, qs: tuple[float, ...]) -> list[float | None]:
    """`weighted_nearest_rank` of the group at each q, from its sort: the same arithmetic
    (metrics/quantile.py), so the same values."""
    return [None] * len(qs) if r is None else ranks_of_sorted(r.ys, r.cum, qs)


PARALLEL_TAIL = 200_000
"""Tail rows from which the replicates are cumulated by two threads (numpy's gathers and
cumulative sums run outside the GIL; each replicate is its own row of the result)."""


def replicate_quantiles(r: Ranked | None, rep_w: F64, qs: tuple[float, ...]) -> F64:
    """R x len(qs) weighted quantiles of a `ranked` group under each replicate's cluster
    weights (NaN where a replicate leaves the group empty): per replicate, exactly
    `weighted_nearest_rank` of metrics/quantile.py, vectorised so a replicate costs no
    full sort."""
    out = np.full((rep_w.shape[0], len(qs)), np.nan)
    if r is None:
        return out
    ys, ws, cs, cum = r.ys, r.ws, r.cs, r.cum
    # Everything below the split is summed per cluster once; a replicate's weight there
    # is one dot product, and only the tail above it is cumulated per replicate.
    split_share = max(0.0, min(qs) - 0.15)
    split = int(np.searchsorted(cum, split_share * cum[-1], side="left"))
    c = rep_w.shape[1]
    below = np.bincount(cs[:split], weights=ws[:split], minlength=c)
    total = np.bincount(cs, weights=ws, minlength=c)
    below_r = rep_w @ below
    total_r = rep_w @ total
    top_y, top_w, top_c = ys[split:], ws[split:], cs[split:]
    targets = np.outer(total_r, np.asarray(qs))

    def fill(reps: NDArray[np.int64]) -> None:
        for i in reps:
            if total_r[i] <= 0:
                continue
            if below_r[i] < targets[i].min():
                cum_r = below_r[i] + np.cumsum(rep_w[i, top_c] * top_w)
                idx = np.searchsorted(cum_r, targets[i], side="left")
                out[i] = top_y[np.minimum(idx, top_y.size - 1)]
            else:  # a rare replicate whose lower part outweighs the split: cumulate all
                cum_r = np.cumsum(rep_w[i, cs] * ws)
                idx = np.searchsorted(cum_r, targets[i], side="left")
                out[i] = ys[np.minimum(idx, ys.size - 1)]

    reps = np.arange(rep_w.shape[0])
    if top_y.size < PARALLEL_TAIL:
        fill(reps)
        return out
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ctdrill-boot") as pool:
        list(pool.map(fill, np.array_split(reps, 2)))
    return out


def boot_means(y: F64, w: F64, cid: I64, rep_w: F64) -> F64:
    """R weighted means under each replicate's cluster weights."""
    c = rep_w.shape[1]
    num = rep_w @ np.bincount(cid, weights=w * y, minlength=c)
    den = rep_w @ np.bincount(cid, weights=w, minlength=c)
    return np.asarray(np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0),
                      dtype=np.float64)


def percentile_ci(reps: F64, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile interval of the finite replicates, None if too few to say anything.

    The bounds are nearest-rank quantiles (metrics/quantile.py), like every quantile
    ctdrill reports: each bound is a replicate that was actually drawn."""
    finite = reps[np.isfinite(reps)]
    if finite.size < 20:
        return None
    a = (1 - level) / 2
    lo, hi = nearest_rank(finite.tolist(), a), nearest_rank(finite.tolist(), 1 - a)
    assert lo is not None and hi is not None  # finite has at least 20 values
    return float(lo), float(hi)
