"""Point estimators of the incremental shortfall of high-pressure orders.

- mean: weighted least squares of IS on the high-pressure indicator, the standardized
  covariates and host fixed effects (statsmodels; host dummies absorbed by weighted
  within-host demeaning, which gives the same coefficient at a fraction of the cost),
  with a host-clustered standard error;
- tails: quantile regression (statsmodels QuantReg) with host fixed effects by Canay's
  two-step method: the host effects come from the mean model, are subtracted, and the
  quantile regression runs on the indicator and covariates. Matching weights enter by
  scaling rows (the check loss is positively homogeneous). It runs on a stratified
  subsample (host x label) when the matched set is larger than `sample`;
- the CDT itself: the weighted p95/p99 of matched high orders minus that of their
  matched low orders (the drills' definition, made like-for-like by matching), with the
  low orders' outcomes bias-corrected for what matching left unequal: each is moved by
  (its high order's covariates - its own) x the covariate slopes of a quantile
  regression at the same q among low orders (Abadie-Imbens' correction, with tail
  slopes: the shortfall tail scales with volatility, so a neighbour a little calmer than
  its high order has a visibly thinner tail).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import statsmodels.api as sm
from numpy.typing import NDArray
from statsmodels.regression.quantile_regression import QuantReg

from ctdrill.analysis.data import F64, I64
from ctdrill.metrics.quantile import weighted_nearest_rank, weighted_nearest_ranks


@dataclass(frozen=True)
class Fit:
    value: float
    se: float | None


def design(treated: NDArray[np.bool_], covs: F64) -> F64:
    """[indicator, standardized covariates]: scale-free so one solve is well conditioned."""
    sd = covs.std(axis=0)
    out = np.empty((covs.shape[0], covs.shape[1] + 1))
    out[:, 0] = treated
    z = out[:, 1:]  # written in place: the same values as (covs - mean) / sd
    np.subtract(covs, covs.mean(axis=0), out=z)
    np.divide(z, np.where(sd > 0, sd, 1.0), out=z)
    return out


def design_from_z(treated: NDArray[np.bool_], z: F64) -> F64:
    """`design(treated, [covs, sin, cos of the hour])` from `matching.standardized` of the
    same covariates: both z-score the same N x 5 array with the same mean, SD and
    element-wise operations, so its columns are `z` bit for bit (test_analysis_exact)
    and need not be computed twice."""
    out = np.empty((z.shape[0], z.shape[1] + 1))
    out[:, 0] = treated
    out[:, 1:] = z
    return out


def demean_within(a: F64, host: I64, w: F64, n_hosts: int) -> F64:
    """Subtract each host's weighted mean (the within transformation)."""
    den = np.bincount(host, weights=w, minlength=n_hosts)
    out = np.empty_like(a)
    cols = a.reshape(a.shape[0], -1)
    flat = out.reshape(a.shape[0], -1)
    for j in range(cols.shape[1]):
        num = np.bincount(host, weights=w * cols[:, j], minlength=n_hosts)
        mean = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        flat[:, j] = cols[:, j] - mean[host]
    return out


def fe_mean(x: F64, y: F64, w: F64, host: I64, n_hosts: int) -> tuple[Fit, F64]:
    """Host-FE WLS of y on x (first column: the high indicator). Returns the indicator's
    coefficient with its host-clustered SE, and the full coefficient vector."""
    keep = w > 0
    xk, yk, wk, hk = x[keep], y[keep], w[keep], host[keep]
    xd = demean_within(xk, hk, wk, n_hosts)
    yd = demean_within(yk, hk, wk, n_hosts)
    model = sm.WLS(yd, xd, weights=wk)
    hosts_used = np.unique(hk).size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hosts_used >= 2:
            res = model.fit(cov_type="cluster", cov_kwds={"groups": hk})
        else:
            res = model.fit()
    params = np.asarray(res.params, dtype=np.float64)
    se = float(np.asarray(res.bse)[0])
    return Fit(float(params[0]), se if np.isfinite(se) else None), params


def host_effects(x: F64, y: F64, w: F64, host: I64, beta: F64, n_hosts: int) -> F64:
    """Each host's weighted mean of y - x beta: its fixed effect in the mean model."""
    resid = y - x @ beta
    num = np.bincount(host, weights=w * resid, minlength=n_hosts)
    den = np.bincount(host, weights=w, minlength=n_hosts)
    return np.asarray(np.divide(num, den, out=np.zeros_like(num), where=den > 0),
                      dtype=np.float64)


def stratified_sample(host: I64, treated: NDArray[np.bool_], w: F64, cap: int,
                      seed: int) -> tuple[I64, F64]:
    """At most about `cap` matched orders, half per label, each (host, label) cell sampled
    at its label's rate; returns row indices and weights scaled by cell size / kept."""
    rows = np.flatnonzero(w > 0)
    if rows.size <= cap:
        return rows, w[rows]
    rng = np.random.default_rng(seed)
    lab = treated[rows].astype(np.int64)
    per_label = np.bincount(lab, minlength=2)
    rate = np.minimum(1.0, (cap / 2) / np.maximum(1, per_label))
    cell = host[rows] * 2 + lab
    order = np.lexsort((rng.random(rows.size), cell))
    cells = cell[order]
    rank = np.arange(cells.size) - np.searchsorted(cells, cells, side="left")
    n_cell = np.bincount(cell).astype(np.float64)
    keep = np.maximum(1.0, np.round(rate[np.arange(n_cell.size) % 2] * n_cell))
    take = rank < keep[cells]
    chosen, kept_cells = rows[order[take]], cells[take]
    scale = n_cell[kept_cells] / keep[kept_cells]
    by_row = np.argsort(chosen)
    return chosen[by_row], w[chosen[by_row]] * scale[by_row]


def _bandwidth(resid: F64, q: float, n: int, level: float = 0.95) -> float:
    """Hall-Sheather bandwidth in residual units (as statsmodels' QuantReg uses)."""
    nd = NormalDist()
    x0 = nd.inv_cdf(q)
    hq = (n ** (-1 / 3) * nd.inv_cdf(1 - (1 - level) / 2) ** (2 / 3)
          * ((1.5 * nd.pdf(x0) ** 2) / (2 * x0 ** 2 + 1)) ** (1 / 3))
    hq = min(hq, 0.5 * min(q, 1 - q))
    ones = np.ones_like(resid)
    iqr = ((weighted_nearest_rank(resid, ones, 0.75) or 0.0)
           - (weighted_nearest_rank(resid, ones, 0.25) or 0.0))
    kappa = min(float(resid.std()), iqr / 1.34) or float(resid.std()) or 1.0
    return kappa * (nd.inv_cdf(q + hq) - nd.inv_cdf(q - hq))


def cluster_sandwich_se(x: F64, resid: F64, w: F64, cid: I64, q: float) -> F64:
    """Cluster-robust Powell sandwich for a weighted quantile regression (Parente and
    Santos Silva 2016): orders of one pressure episode share shocks, so the score is
    summed per cluster. statsmodels' own SEs assume independent, unweighted rows."""
    h = _bandwidth(resid, q, resid.size)
    near = (np.abs(resid) <= h).astype(np.float64)
    hess = (x * (w * near)[:, None]).T @ x / (2 * h)
    score = x * (w * (q - (resid < 0)))[:, None]
    _, inverse = np.unique(cid, return_inverse=True)
    g = np.zeros((int(inverse.max()) + 1, x.shape[1]))
    np.add.at(g, inverse.ravel(), score)
    meat = g.T @ g
    try:
        bread = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        bread = np.linalg.pinv(hess)
    cov = bread @ meat @ bread
    return np.asarray(np.sqrt(np.clip(np.diag(cov), 0, None)), dtype=np.float64)


def quantreg_fe(x: F64, y: F64, w: F64, host: I64, cid: I64, n_hosts: int, beta: F64,
                q: float, cap: int, seed: int) -> tuple[Fit, int]:
    """Canay two-step host-FE quantile regression at q; returns the indicator's
    coefficient with a cluster-robust SE, and the number of rows used."""
    alpha = host_effects(x, y, w, host, beta, n_hosts)
    idx, wi = stratified_sample(host, x[:, 0] > 0.5, w, cap, seed)
    yy = y[idx] - alpha[host[idx]]
    xx = np.column_stack([np.ones(idx.size), x[idx]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = QuantReg(yy * wi, xx * wi[:, None]).fit(q=q, max_iter=2000)
    params = np.asarray(res.params, dtype=np.float64)
    se = float(cluster_sandwich_se(xx, yy - xx @ params, wi, cid[idx], q)[1])
    return Fit(float(params[1]), se if np.isfinite(se) and se > 0 else None), idx.size


def tail_slopes(z: F64, y: F64, host: I64, controls: I64, n_hosts: int, q: float,
                cap: int, seed: int) -> F64:
    """Covariate slopes of the q-quantile of y among low orders, host intercepts removed
    (Canay), on a random subsample of at most `cap` of them."""
    rows = controls
    if rows.size > cap:
        rows = np.sort(np.random.default_rng(seed).choice(rows, cap, replace=False))
    ones = np.ones(rows.size)
    yy = y[rows] - _host_mean(y[rows], host[rows], n_hosts)
    xx = np.column_stack([ones, z[rows]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = QuantReg(yy, xx).fit(q=q, max_iter=2000)
    return np.asarray(res.params, dtype=np.float64)[1:]


def _host_mean(y: F64, host: I64, n_hosts: int) -> F64:
    num = np.bincount(host, weights=y, minlength=n_hosts)
    den = np.bincount(host, minlength=n_hosts).astype(np.float64)
    return np.asarray(np.divide(num, den, out=np.zeros_like(num), where=den > 0)[host],
                      dtype=np.float64)


def counterfactual(y: F64, z: F64, control: I64, target_z: F64, slopes: F64) -> F64:
    """Bias-corrected stand-in outcomes: y_c + (z_target - z_c) . slopes."""
    return np.asarray(y[control] + (target_z - z[control]) @ slopes, dtype=np.float64)


def quantile_gaps(y: F64, treated: NDArray[np.bool_], w: F64,
                  qs: tuple[float, ...]) -> list[float | None]:
    """Weighted q-quantile of high orders minus that of low orders, for each q; one sort
    per side (`weighted_nearest_ranks`: the same values as one quantile at a time)."""
    his = weighted_nearest_ranks(y[treated], w[treated], qs)
    los = weighted_nearest_ranks(y[~treated], w[~treated], qs)
    return [None if hi is None or lo is None else hi - lo
            for hi, lo in zip(his, los, strict=True)]


def mean_gap(y: F64, treated: NDArray[np.bool_], w: F64) -> float | None:
    wt, wc = w[treated], w[~treated]
    if wt.sum() <= 0 or wc.sum() <= 0:
        return None
    return float(np.average(y[treated], weights=wt) - np.average(y[~treated], weights=wc))
