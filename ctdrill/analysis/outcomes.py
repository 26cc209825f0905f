"""Execution outcomes under pressure (docs/ANALYSIS.md "Execution outcomes"): the passive
fill ratio and short-horizon markouts of high- vs low-pressure orders, and the
cancel/replace rate before, during and after pressure episodes.

Each is estimated like the CDT's mean, so the sections of one report agree on what
"matched" means: the same matching (method, covariates, within host), the host-FE WLS
of the outcome on the pressure indicator and covariates with the matching weights, and
the same seeded cluster bootstrap. Fill ratio and markouts reuse the CDT's own matched
sample, clusters and replicate weights. Cancel/replace compares each window's orders
with *calm* ones (low pressure and no episode within the window on either side), one
matching per window, on a cluster grid over the whole log drawn with the same seed.
Orders without a value for an outcome (an empty cell) drop out of that outcome with
their matching weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ctdrill.analysis.bootstrap import (
    Clusters,
    block_clusters,
    cluster_moments,
    fe_solve,
    percentile_ci,
    replicate_weights,
)
from ctdrill.analysis.config import Config
from ctdrill.analysis.data import (
    CANCEL_REPLACE,
    F64,
    I64,
    PASSIVE_FILL,
    OrderLog,
    Timeline,
)
from ctdrill.analysis.estimate import design_from_z, mean_gap
from ctdrill.analysis.labels import HIGH, LOW, Labels
from ctdrill.analysis.matching import match
from ctdrill.analysis.pressure import Pressure, as_pressure
from ctdrill.analysis.results import Estimate, Outcome, OutcomesResult

WINDOWS = ("before", "during", "after")
METHOD = "host-FE WLS on matched orders, cluster bootstrap percentile CI"


@dataclass(frozen=True)
class CdtMatch:
    """The CDT stage's matched sample: its high and low orders, the indicator, the ATT
    weights, the regression design and the bootstrap's clusters and replicate weights."""

    sub: OrderLog
    treated: NDArray[np.bool_]
    weight: F64
    x: F64
    clusters: Clusters
    rep_w: F64


def unit(name: str) -> str:
    return {PASSIVE_FILL: "ratio", CANCEL_REPLACE: "per min"}.get(name, "bps")


def compare(name: str, comparison: str, y: F64, treated: NDArray[np.bool_], w: F64, x: F64,
            clusters: Clusters, rep_w: F64, level: float) -> Outcome:
    """One outcome on one matched sample: weighted means, naive gap, and the host-FE
    matched difference with its bootstrap CI (rows without a value weigh 0)."""
    valid = np.isfinite(y)
    yv, wv = np.where(valid, y, 0.0), np.where(valid, w, 0.0)
    hi_rows, lo_rows = treated & (wv > 0), ~treated & (wv > 0)
    n_high, n_low = int(hi_rows.sum()), int(lo_rows.sum())
    naive = mean_gap(y[valid], treated[valid], np.ones(int(valid.sum())))
    if n_high == 0 or n_low == 0:
        return Outcome(name, comparison, unit(name), None, None, naive, Estimate(None),
                       n_high, n_low, "no matched pair has a value")
    moments = cluster_moments(x, yv[:, None], wv, clusters)  # once for point and replicates
    point = float(fe_solve(moments, clusters)[0, 0, 0])
    boot = fe_solve(moments, clusters, rep_w)[:, 0, 0]
    ci = percentile_ci(boot, level)
    return Outcome(name, comparison, unit(name),
                   float(np.average(y[hi_rows], weights=wv[hi_rows])),
                   float(np.average(y[lo_rows], weights=wv[lo_rows])), naive,
                   Estimate(point, ci[0] if ci else None, ci[1] if ci else None, METHOD),
                   n_high, n_low)


def _around_episodes(orders: OrderLog, timeline: Pressure, labels: Labels,
                     cfg: Config) -> tuple[list[Outcome], dict[str, int]]:
    """Cancel/replace rate of orders before, during and after episodes vs calm orders."""
    before, after = timeline.episode_windows(orders, labels, cfg.ctr_high,
                                             cfg.episode_window_s)
    flags = dict(zip(WINDOWS, (before, labels.label == HIGH, after), strict=True))
    calm = (labels.label == LOW) & ~before & ~after
    counts = {**{k: int(v.sum()) for k, v in flags.items()}, "calm": int(calm.sum())}
    y = orders.outcomes[CANCEL_REPLACE]
    clusters = block_clusters(orders.host, orders.start, len(orders.hosts), cfg.block_s)
    rep_w = replicate_weights(cfg.seed, cfg.reps, clusters.size)
    covs, hour = orders.covariates, orders.hour  # the CDT's own when it kept every order
    out = []
    for window, flag in flags.items():
        rows = np.flatnonzero((flag | calm) & np.isfinite(y))
        treated = flag[rows]
        comparison = f"{window} vs calm"
        if treated.all() or not treated.any():
            which = "calm order" if treated.any() else f"order {window} an episode"
            out.append(Outcome(CANCEL_REPLACE, comparison, unit(CANCEL_REPLACE), None, None,
                               None, Estimate(None), int(treated.sum()), 0,
                               f"no {which} with a value"))
            continue
        out.append(_versus_calm(comparison, orders.host[rows], covs[rows], hour[rows],
                                treated, y[rows], Clusters(clusters.id[rows],
                                                           clusters.n_hosts,
                                                           clusters.n_blocks), rep_w, cfg))
    return out, counts


def _versus_calm(comparison: str, host: I64, covs: F64, hour: F64,
                 treated: NDArray[np.bool_], y: F64, clusters: Clusters, rep_w: F64,
                 cfg: Config) -> Outcome:
    """One window's orders against calm ones: its own matching, design and bootstrap.
    Every array of it goes on return, and the matching's N x 5 z-scores once the design
    holds them (a window of a fleet-year's log is ten million rows); the weights are
    all it reads of the matching, so no balance table is made."""
    m = match(host, covs, hour, treated, cfg.method, cfg.k, cfg.caliper, cfg.bins,
              cfg.tod_bins, balance=False)
    weight, x = m.weight, design_from_z(treated, m.z)
    del m  # its N x 5 z-scores, before the bootstrap
    return compare(CANCEL_REPLACE, comparison, y, treated, weight, x, clusters, rep_w,
                   cfg.level)


def estimate(orders: OrderLog, timeline: Timeline | Pressure, labels: Labels, cdt: CdtMatch,
             cfg: Config) -> OutcomesResult:
    """Every outcome section the log can feed; the others are named with the missing
    column (never an error)."""
    def high_low(name: str) -> Outcome:
        return compare(name, "high vs low", cdt.sub.outcomes[name], cdt.treated,
                       cdt.weight, cdt.x, cdt.clusters, cdt.rep_w, cfg.level)

    fill = [high_low(PASSIVE_FILL)] if PASSIVE_FILL in cdt.sub.outcomes else []
    markouts = [high_low(n) for n in sorted(cdt.sub.outcomes)
                if n not in (PASSIVE_FILL, CANCEL_REPLACE)]
    around: list[Outcome] = []
    counts: dict[str, int] = {}
    if CANCEL_REPLACE in orders.outcomes:
        around, counts = _around_episodes(orders, as_pressure(timeline), labels, cfg)
    ordered = (*fill, *around, *markouts)
    return OutcomesResult(ordered, dict(orders.skipped), cfg.episode_window_s, counts)
