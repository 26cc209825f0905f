"""The analysis as one pure function of the two inputs and a config: label, match,
estimate, bootstrap, decompose, validate on the canary. No I/O here."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from ctdrill.analysis import canary as canary_mod
from ctdrill.analysis.bootstrap import (
    Clusters,
    block_clusters,
    boot_quantiles,
    fe_coefficients,
    percentile_ci,
    replicate_weights,
    weighted_quantile,
)
from ctdrill.analysis.data import CT_PARTS, F64, TOP_PARTS, OrderLog, Timeline
from ctdrill.analysis.estimate import (
    counterfactual,
    design,
    fe_mean,
    mean_gap,
    quantile_gap,
    quantreg_fe,
    tail_slopes,
)
from ctdrill.analysis.labels import HIGH, LOW, Labels, label_orders
from ctdrill.analysis.matching import Pairs, hour_of_day, match
from ctdrill.analysis.results import AnalysisResult, CanaryResult, Estimate, Part
from ctdrill.errors import InvalidInput

TAIL_GRID = (0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999)


@dataclass(frozen=True)
class Config:
    ctr_high: float = 0.9
    ctr_low: float = 0.7
    method: str = "nn"  # nn (nearest neighbours) or cem (coarsened exact matching)
    k: int = 3  # nn: neighbours per high order
    caliper: float = 1.0  # nn: farthest neighbour that counts, standardized units
    bins: int = 5  # cem: quantile bins per covariate (spread, volatility, participation)
    tod_bins: int = 6  # cem: time-of-day bins (6 = 4-hour blocks)
    reps: int = 200  # bootstrap replicates
    seed: int = 7
    block_s: float = 900.0  # bootstrap cluster: host x this many seconds
    level: float = 0.95
    qr_sample: int = 100_000  # QuantReg rows at most (stratified subsample beyond)
    canary: str | None = None  # comma-separated hosts or globs
    change_at: float | None = None  # epoch seconds

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _span(a: F64) -> list[float]:
    return [float(a.min()), float(a.max())] if a.size else []


def check_overlap(orders: OrderLog, timeline: Timeline, labels: Labels) -> None:
    """One clear error when the log and the timeline do not meet."""
    if not labels.shared_hosts:
        raise InvalidInput(
            f"no host of {orders.source} appears in timeline {timeline.source} (log: "
            f"{', '.join(orders.hosts[:5])}; timeline: {', '.join(timeline.hosts[:5])})",
            "host names must be the same in both files")
    if (labels.label != -1).sum() == 0:
        lo, hi = _span(orders.start), _span(timeline.t)
        raise InvalidInput(
            f"no order of {orders.source} overlaps timeline {timeline.source} in time "
            f"(log {_iso(lo[0])}..{_iso(lo[1])}, timeline {_iso(hi[0])}..{_iso(hi[1])})",
            "pass the timeline of the same period as the log")


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _estimate(value: float | None, reps: F64 | None, level: float, method: str) -> Estimate:
    ci = percentile_ci(reps, level) if reps is not None and value is not None else None
    return Estimate(value, ci[0] if ci else None, ci[1] if ci else None, method)


def _parts(orders: OrderLog) -> list[tuple[str, str | None]]:
    names: list[tuple[str, str | None]] = [(p, None) for p in TOP_PARTS if p in orders.parts]
    names += [(p, "conntrack_bps") for p in CT_PARTS if p in orders.parts]
    return names


def analyze(orders: OrderLog, timeline: Timeline, cfg: Config = Config()) -> AnalysisResult:
    """Label, match, estimate and validate; every number in the report comes from here."""
    if not 0 <= cfg.ctr_low <= cfg.ctr_high <= 1:
        raise InvalidInput("CTR thresholds must satisfy 0 <= low <= high <= 1",
                           "e.g. --ctr-low 0.7 --ctr-high 0.9")
    chosen = _canary_pool(orders, cfg)  # fail fast, before the expensive part
    clock: dict[str, float] = {}
    t = time.perf_counter()
    labels = label_orders(orders, timeline, cfg.ctr_high, cfg.ctr_low)
    check_overlap(orders, timeline, labels)
    clock["label"] = time.perf_counter() - t
    counts = labels.counts()
    if counts["high"] == 0 or counts["low"] == 0:
        which = "high" if counts["high"] == 0 else "low"
        raise InvalidInput(
            f"no {which}-pressure order in {orders.source} against {timeline.source} "
            f"(labels: {counts})",
            "nothing to compare: pass a log and timeline that include both calm and "
            "pressured periods, or adjust --ctr-high/--ctr-low")
    keep = (labels.label == HIGH) | (labels.label == LOW)
    sub = orders.subset(keep)
    treated: NDArray[np.bool_] = labels.label[keep] == HIGH
    covs = np.column_stack([sub.spread_bps, sub.volatility, sub.participation])
    hour = hour_of_day(sub.start)

    t = time.perf_counter()
    period = None
    if chosen is not None and cfg.change_at is not None:
        period = (sub.start >= cfg.change_at).astype(np.int64)
    m = match(sub.host, covs, hour, treated, cfg.method, cfg.k, cfg.caliper, cfg.bins,
              cfg.tod_bins, period)
    if m.matched_high == 0:
        raise InvalidInput("no high-pressure order found a like-for-like low-pressure order",
                           "loosen the matching: a larger --caliper, or --match cem with "
                           "fewer --bins")
    w = m.weight
    clock["match"] = time.perf_counter() - t

    t = time.perf_counter()
    tod = 2 * np.pi * hour / 24
    x = design(treated, np.column_stack([covs, np.sin(tod), np.cos(tod)]))
    fit, beta = fe_mean(x, sub.is_bps, w, sub.host, len(orders.hosts))
    clusters = block_clusters(sub.host, sub.start, len(orders.hosts), cfg.block_s)
    rep_w = replicate_weights(cfg.seed, cfg.reps, clusters.size)
    parts = _parts(sub)
    ys = np.column_stack([sub.is_bps, *[sub.parts[p] for p, _ in parts]])
    boot_beta = fe_coefficients(x, ys, w, clusters, rep_w)[:, 0, :]
    clock["mean"] = time.perf_counter() - t

    t = time.perf_counter()
    qs = (0.95, 0.99)
    pairs = m.pairs
    controls = np.flatnonzero(~treated)
    n_hosts = len(orders.hosts)
    cf = {q: counterfactual(sub.is_bps, m.z, pairs.control, pairs.target_z,
                            tail_slopes(m.z, sub.is_bps, sub.host, controls, n_hosts, q,
                                        cfg.qr_sample, cfg.seed))
          for q in qs}
    y_hi, w_hi, c_hi = sub.is_bps[treated], w[treated], clusters.id[treated]
    hi_b = boot_quantiles(y_hi, w_hi, c_hi, rep_w, qs)
    lo_b = np.column_stack([boot_quantiles(cf[q], pairs.share, clusters.id[pairs.control],
                                           rep_w, (q,))[:, 0] for q in qs])
    cdt_b = hi_b - lo_b
    clock["tails"] = time.perf_counter() - t

    method_mean = ("host-FE WLS on matched orders (statsmodels), cluster bootstrap "
                   "percentile CI")
    matched = {"mean": _estimate(fit.value, boot_beta[:, 0], cfg.level, method_mean)}
    for i, q in enumerate(qs):
        q_hi = weighted_quantile(y_hi, w_hi, q)
        q_lo = weighted_quantile(cf[q], pairs.share, q)
        matched[f"cdt_p{round(q * 100)}"] = _estimate(
            None if q_hi is None or q_lo is None else q_hi - q_lo, cdt_b[:, i], cfg.level,
            "matched high minus bias-corrected matched low quantile, cluster bootstrap "
            "percentile CI")
    naive_w = np.ones(treated.size)
    naive = {"mean": mean_gap(sub.is_bps, treated, naive_w),
             "cdt_p95": quantile_gap(sub.is_bps, treated, naive_w, 0.95),
             "cdt_p99": quantile_gap(sub.is_bps, treated, naive_w, 0.99)}

    t = time.perf_counter()
    quantreg: dict[str, Estimate] = {}
    rows = 0
    z = NormalDist().inv_cdf(0.5 + cfg.level / 2)
    for q in qs:
        qfit, rows = quantreg_fe(x, sub.is_bps, w, sub.host, clusters.id, len(orders.hosts),
                                 beta, q, cfg.qr_sample, cfg.seed)
        lo = qfit.value - z * qfit.se if qfit.se is not None else None
        hi = qfit.value + z * qfit.se if qfit.se is not None else None
        quantreg[f"p{round(q * 100)}"] = Estimate(
            qfit.value, lo, hi, "Canay two-step host-FE QuantReg (statsmodels), "
            "cluster-robust sandwich CI" + (f", stratified subsample of {rows} orders"
                               if rows < int((w > 0).sum()) else ""))
    clock["quantreg"] = time.perf_counter() - t

    point_beta = fe_coefficients(x, ys, w, clusters)[0, 0, :]
    decomposition = tuple(
        Part(name, parent, _estimate(float(point_beta[i + 1]), boot_beta[:, i + 1],
                                     cfg.level, "host-FE WLS, cluster bootstrap"))
        for i, (name, parent) in enumerate(parts))

    grid_hi = [weighted_quantile(sub.is_bps[treated], w[treated], q) for q in TAIL_GRID]
    grid_lo = [weighted_quantile(cf[0.95 if q <= 0.95 else 0.99], pairs.share, q)
               for q in TAIL_GRID]
    curve = {"q": list(TAIL_GRID), "high": [v or 0.0 for v in grid_hi],
             "low": [v or 0.0 for v in grid_lo]}

    canary_result = None
    if chosen is not None and period is not None:
        t = time.perf_counter()
        canary_result = _canary(orders, chosen, sub, treated, w, period, clusters, cf, pairs,
                                rep_w, cfg)
        clock["canary"] = time.perf_counter() - t

    cdt = matched["cdt_p95"]
    attributable = cdt.excludes_zero and (cdt.value or 0) > 0
    verdict = _verdict(cdt, matched["mean"])
    return AnalysisResult(
        inputs={"log": orders.source, "orders": len(orders), "hosts": len(orders.hosts),
                "log_span": _span(orders.start), "timeline": timeline.source,
                "samples": len(timeline), "timeline_hosts": len(timeline.hosts),
                "timeline_span": list(timeline.span()),
                "shared_hosts": len(labels.shared_hosts), "parts": [p for p, _ in parts]},
        config=cfg.to_json(), labels=counts, matching=m, naive=naive, matched=matched,
        quantreg=quantreg, quantreg_rows=rows, parts=decomposition, tail_curve=curve,
        verdict=verdict, attributable=attributable, canary=canary_result, timings_s=clock)


def _verdict(cdt: Estimate, mean: Estimate) -> str:
    if cdt.value is None:
        return "CDT not estimable"
    span = f"[{cdt.lo:+.2f}, {cdt.hi:+.2f}]" if cdt.lo is not None and cdt.hi is not None \
        else "(no CI)"
    head = f"CDT p95 {cdt.value:+.2f} bps {span}"
    if cdt.excludes_zero and cdt.value > 0:
        return (f"{head}: conntrack pressure adds tail shortfall beyond what spread, "
                f"volatility, participation and time of day explain (mean "
                f"{(mean.value or 0):+.2f} bps)")
    if cdt.excludes_zero:
        return f"{head}: high-pressure orders fare better in the tail than matched calm ones"
    return f"{head}: no tail shortfall attributable to conntrack pressure (CI includes zero)"


def _canary_pool(orders: OrderLog, cfg: Config) -> tuple[str, ...] | None:
    """The canary hosts, after checking the change time splits the log."""
    if cfg.canary is None or cfg.change_at is None:
        return None
    chosen = canary_mod.select_hosts(cfg.canary, orders.hosts)
    after = orders.start >= cfg.change_at
    if after.all() or not after.any():
        raise InvalidInput(f"--change-at {_iso(cfg.change_at)} leaves no orders "
                           f"{'before' if after.all() else 'after'} it",
                           "pick a time inside the execution log's span")
    return chosen


def _canary(orders: OrderLog, chosen: tuple[str, ...], sub: OrderLog,
            treated: NDArray[np.bool_], w: F64, period: NDArray[np.int64],
            clusters: Clusters, cf: dict[float, F64], pairs: Pairs, rep_w: F64,
            cfg: Config) -> CanaryResult:
    assert cfg.change_at is not None
    control = tuple(h for h in orders.hosts if h not in chosen)
    is_canary = np.isin(np.arange(len(orders.hosts)), [orders.hosts.index(h) for h in chosen])
    after_all = orders.start >= cfg.change_at
    t0, n_blocks = float(sub.start.min()), clusters.n_blocks
    block_all = np.clip((orders.start - t0) // cfg.block_s, 0, n_blocks - 1).astype(np.int64)
    cid_all = orders.host * n_blocks + block_all
    cells, did = canary_mod.diff_in_diff(
        sub.is_bps, treated, w, is_canary[sub.host], period.astype(bool), clusters.id, cf,
        pairs, orders.is_bps, is_canary[orders.host], after_all, cid_all, rep_w)
    return canary_mod.build(chosen, control, cfg.change_at, cells, did)
