"""The analysis as one pure function of the two inputs and a config: label, match,
estimate, bootstrap, decompose, validate on the canary. No I/O here."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from ctdrill.analysis import blas, heap
from ctdrill.analysis import canary as canary_mod
from ctdrill.analysis import outcomes as outcomes_mod
from ctdrill.analysis.bootstrap import (
    Clusters,
    block_clusters,
    cluster_moments,
    fe_solve,
    percentile_ci,
    point_quantiles,
    ranked,
    replicate_quantiles,
    replicate_weights,
)
from ctdrill.analysis.config import Config as Config  # re-exported: the public name
from ctdrill.analysis.data import CT_PARTS, F64, TOP_PARTS, OrderLog, Timeline
from ctdrill.analysis.estimate import (
    Fit,
    counterfactual,
    design_from_z,
    fe_mean,
    mean_gap,
    quantile_gaps,
    quantreg_fe,
    tail_slopes,
)
from ctdrill.analysis.labels import HIGH, LOW, Labels
from ctdrill.analysis.matching import Matching, Pairs, match
from ctdrill.analysis.pressure import Pressure, as_pressure
from ctdrill.analysis.results import (
    AnalysisResult,
    CanaryResult,
    Estimate,
    OutcomesResult,
    Part,
)
from ctdrill.errors import InvalidInput

TAIL_GRID = (0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999)
TAIL_QS = (0.95, 0.99)  # the CDT's quantiles


def _span(a: F64) -> list[float]:
    return [float(a.min()), float(a.max())] if a.size else []


def check_overlap(orders: OrderLog, timeline: Timeline | Pressure, labels: Labels) -> None:
    """One clear error when the log and the timeline do not meet."""
    timeline = as_pressure(timeline)
    if not labels.shared_hosts:
        raise InvalidInput(
            f"no host of {orders.source} appears in timeline {timeline.source} (log: "
            f"{', '.join(orders.hosts[:5])}; timeline: {', '.join(timeline.hosts[:5])})",
            "host names must be the same in both files")
    if (labels.label != -1).sum() == 0:
        lo, hi = _span(orders.start), list(timeline.span())
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


@contextmanager
def _timed(clock: dict[str, float], stage: str) -> Iterator[None]:
    """Record how long a stage took (the report's timings); then hand the stage's free
    heap pages back (`heap.trim`), so the next stage's peak does not sit on them."""
    t = time.perf_counter()
    yield
    clock[stage] = time.perf_counter() - t
    heap.trim()


@dataclass(frozen=True)
class _Sample:
    """The high- and low-pressure orders the estimators run on."""

    labels: Labels
    counts: dict[str, int]
    sub: OrderLog
    treated: NDArray[np.bool_]
    covs: F64
    hour: F64


def _label(orders: OrderLog, timeline: Pressure, cfg: Config,
           clock: dict[str, float]) -> _Sample:
    """Label every order by the pressure it met; both sides must be present."""
    with _timed(clock, "label"):
        labels = timeline.label(orders, cfg.ctr_high, cfg.ctr_low)
        check_overlap(orders, timeline, labels)
    counts = labels.counts()
    if counts["high"] == 0 or counts["low"] == 0:
        which = "high" if counts["high"] == 0 else "low"
        raise InvalidInput(
            f"no {which}-pressure order in {orders.source} against {timeline.source} "
            f"(labels: {counts})",
            "nothing to compare: pass a log and timeline that include both calm and "
            "pressured periods, or adjust --ctr-high/--ctr-low")
    keep = (labels.label == HIGH) | (labels.label == LOW)
    sub = orders if keep.all() else orders.subset(keep)  # no copy of a fully labelled log
    return _Sample(labels, counts, sub, labels.label[keep] == HIGH,
                   sub.covariates, sub.hour)


def _match(s: _Sample, period: NDArray[np.int64] | None, cfg: Config) -> Matching:
    m = match(s.sub.host, s.covs, s.hour, s.treated, cfg.method, cfg.k, cfg.caliper,
              cfg.bins, cfg.tod_bins, period)
    if m.matched_high == 0:
        raise InvalidInput("no high-pressure order found a like-for-like low-pressure order",
                           "loosen the matching: a larger --caliper, or --match cem with "
                           "fewer --bins")
    return m


@dataclass(frozen=True)
class _Means:
    """The host-FE mean fit on matched orders and its cluster bootstrap."""

    x: F64
    fit: Fit
    beta: F64
    clusters: Clusters
    rep_w: F64
    parts: list[tuple[str, str | None]]
    point_beta: F64
    boot_beta: F64


def _means(s: _Sample, m: Matching, n_hosts: int, clusters: Clusters,
           draws: Future[F64]) -> _Means:
    """`draws`: the replicate weights of `clusters`, drawn in the background. The design
    is the matching's z-scores with the indicator (`estimate.design_from_z`)."""
    w = m.weight
    x = design_from_z(s.treated, m.z)
    fit, beta = fe_mean(x, s.sub.is_bps, w, s.sub.host, n_hosts)
    rep_w = draws.result()
    parts = _parts(s.sub)
    # the moments read matched rows only (bootstrap.cluster_moments: the same sums), so
    # the outcomes [IS, parts] are gathered for those rows alone
    used = np.flatnonzero(w != 0)
    ys = np.column_stack([s.sub.is_bps[used], *[s.sub.parts[p][used] for p, _ in parts]])
    moments = cluster_moments(x[used], ys, w[used], Clusters(
        clusters.id[used], clusters.n_hosts, clusters.n_blocks))  # the decomposition's too
    boot_beta = fe_solve(moments, clusters, rep_w)[:, 0, :]
    point_beta = fe_solve(moments, clusters)[0, 0, :]
    return _Means(x, fit, beta, clusters, rep_w, parts, point_beta, boot_beta)


@dataclass(frozen=True)
class _Tails:
    """Bias-corrected stand-in outcomes per tail quantile, the CDT's replicates, and the
    quantiles of the matched high orders and of their stand-ins at every q the estimates
    and the tail curve report (read off the sorts the replicates made)."""

    cf: dict[float, F64]
    cdt_b: F64
    high_at: dict[float, float | None]
    low_at: dict[float, float | None]


def _stand_ins_for(q: float) -> float:
    """Which tail quantile's stand-ins a quantile reads: p95's up to it, p99's above."""
    return TAIL_QS[0] if q <= TAIL_QS[0] else TAIL_QS[1]


@dataclass(frozen=True)
class _Fits:
    """The four QuantReg fits (tail slopes and host-FE QuantReg at p95 and p99), each
    running in a background thread as soon as its inputs exist: independent,
    deterministic computations, so the same numbers as one after the other, while the
    other stages run beside them (numpy and BLAS release the GIL)."""

    slopes: dict[float, Future[F64]]
    quantreg: dict[float, Future[tuple[Fit, int]]]


def _slope_fits(pool: ThreadPoolExecutor, s: _Sample, m: Matching, n_hosts: int,
                cfg: Config) -> dict[float, Future[F64]]:
    controls = np.flatnonzero(~s.treated)
    return {q: pool.submit(tail_slopes, m.z, s.sub.is_bps, s.sub.host, controls, n_hosts,
                           q, cfg.qr_sample, cfg.seed) for q in TAIL_QS}


def _quantreg_fits(pool: ThreadPoolExecutor, s: _Sample, w: F64, mf: _Means, n_hosts: int,
                   cfg: Config) -> dict[float, Future[tuple[Fit, int]]]:
    return {q: pool.submit(quantreg_fe, mf.x, s.sub.is_bps, w, s.sub.host, mf.clusters.id,
                           n_hosts, mf.beta, q, cfg.qr_sample, cfg.seed) for q in TAIL_QS}


@contextmanager
def _background() -> Iterator[ThreadPoolExecutor]:
    """Two worker threads for the replicate weights and the QuantReg fits. statsmodels
    warns on slow convergence and the fits silence that with `warnings.catch_warnings`,
    which is not thread-safe: the filters are set once here, around every thread's life,
    and restored after."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ctdrill-fit")
        try:
            yield pool
        finally:  # on an error, what has not started does not start
            pool.shutdown(wait=True, cancel_futures=True)


def _tails(s: _Sample, m: Matching, mf: _Means, slopes: dict[float, Future[F64]]) -> _Tails:
    pairs, y, cid = m.pairs, s.sub.is_bps, mf.clusters.id
    cf = {q: counterfactual(y, m.z, pairs.control, pairs.target_z, slopes[q].result())
          for q in TAIL_QS}
    # one sort per group: the replicates and every point quantile read it
    high = ranked(y[s.treated], m.weight[s.treated], cid[s.treated])
    low = {q: ranked(cf[q], pairs.share, cid[pairs.control]) for q in TAIL_QS}
    hi_b = replicate_quantiles(high, mf.rep_w, TAIL_QS)
    lo_b = np.column_stack([replicate_quantiles(low[q], mf.rep_w, (q,))[:, 0]
                            for q in TAIL_QS])
    every = tuple(sorted({*TAIL_GRID, *TAIL_QS}))
    return _Tails(cf, hi_b - lo_b, dict(zip(every, point_quantiles(high, every), strict=True)),
                  {q: point_quantiles(low[_stand_ins_for(q)], (q,))[0] for q in every})


def _matched(mf: _Means, tails: _Tails, cfg: Config) -> dict[str, Estimate]:
    """The headline estimates: mean uplift and CDT p95/p99 on matched orders."""
    method_mean = ("host-FE WLS on matched orders (statsmodels), cluster bootstrap "
                   "percentile CI")
    out = {"mean": _estimate(mf.fit.value, mf.boot_beta[:, 0], cfg.level, method_mean)}
    for i, q in enumerate(TAIL_QS):
        q_hi, q_lo = tails.high_at[q], tails.low_at[q]
        out[f"cdt_p{round(q * 100)}"] = _estimate(
            None if q_hi is None or q_lo is None else q_hi - q_lo, tails.cdt_b[:, i],
            cfg.level, "matched high minus bias-corrected matched low quantile, cluster "
            "bootstrap percentile CI")
    return out


def _naive(s: _Sample) -> dict[str, float | None]:
    """All high minus all low orders, unmatched: what matching corrects. It reads the
    labelled sample only, so it runs in the background from the start."""
    ones = np.ones(s.treated.size)
    p95, p99 = quantile_gaps(s.sub.is_bps, s.treated, ones, (0.95, 0.99))
    return {"mean": mean_gap(s.sub.is_bps, s.treated, ones), "cdt_p95": p95, "cdt_p99": p99}


def _quantreg(w: F64, fits: dict[float, Future[tuple[Fit, int]]],
              cfg: Config) -> tuple[dict[str, Estimate], int]:
    """The second view of the tail: host-FE quantile regression, and the rows it used."""
    quantreg: dict[str, Estimate] = {}
    rows = 0
    z = NormalDist().inv_cdf(0.5 + cfg.level / 2)
    for q in TAIL_QS:
        qfit, rows = fits[q].result()
        lo = qfit.value - z * qfit.se if qfit.se is not None else None
        hi = qfit.value + z * qfit.se if qfit.se is not None else None
        quantreg[f"p{round(q * 100)}"] = Estimate(
            qfit.value, lo, hi, "Canay two-step host-FE QuantReg (statsmodels), "
            "cluster-robust sandwich CI" + (f", stratified subsample of {rows} orders"
                                            if rows < int((w > 0).sum()) else ""))
    return quantreg, rows


def _decomposition(mf: _Means, cfg: Config) -> tuple[Part, ...]:
    return tuple(
        Part(name, parent, _estimate(float(mf.point_beta[i + 1]), mf.boot_beta[:, i + 1],
                                     cfg.level, "host-FE WLS, cluster bootstrap"))
        for i, (name, parent) in enumerate(mf.parts))


def _tail_curve(tails: _Tails) -> dict[str, list[float]]:
    """Quantiles of high orders and of their matched stand-ins, for the plot (each low
    point from the stand-ins of its side of p95)."""
    return {"q": list(TAIL_GRID), "high": [tails.high_at[q] or 0.0 for q in TAIL_GRID],
            "low": [tails.low_at[q] or 0.0 for q in TAIL_GRID]}


def _outcomes(orders: OrderLog, timeline: Pressure, s: _Sample, m: Matching, mf: _Means,
              cfg: Config) -> OutcomesResult:
    """Fill ratio, cancel/replace and markouts, on the CDT's matched sample."""
    return outcomes_mod.estimate(orders, timeline, s.labels, outcomes_mod.CdtMatch(
        s.sub, s.treated, m.weight, mf.x, mf.clusters, mf.rep_w), cfg)


def _inputs(orders: OrderLog, timeline: Pressure, s: _Sample,
            parts: list[tuple[str, str | None]]) -> dict[str, object]:
    return {"log": orders.source, "orders": len(orders), "hosts": len(orders.hosts),
            "log_span": _span(orders.start), "timeline": timeline.source,
            "samples": len(timeline), "timeline_hosts": len(timeline.hosts),
            "timeline_span": list(timeline.span()),
            "shared_hosts": len(s.labels.shared_hosts), "parts": [p for p, _ in parts]}


def analyze(orders: OrderLog, timeline: Timeline | Pressure,
            cfg: Config = Config()) -> AnalysisResult:
    """Label, match, estimate and validate; every number in the report comes from here.
    `timeline`: in memory, or any engine's view of it (`pressure.Pressure`). BLAS runs
    one thread meanwhile (`blas.one_thread`: the pipeline's own threads use the cores),
    and freed memory is reused rather than unmapped (`heap.kept_heap`)."""
    with blas.one_thread(), heap.kept_heap():
        return _analyze(orders, as_pressure(timeline), cfg)


def _analyze(orders: OrderLog, timeline: Pressure, cfg: Config) -> AnalysisResult:
    if not 0 <= cfg.ctr_low <= cfg.ctr_high <= 1:
        raise InvalidInput("CTR thresholds must satisfy 0 <= low <= high <= 1",
                           "e.g. --ctr-low 0.7 --ctr-high 0.9")
    chosen = _canary_pool(orders, cfg)  # fail fast, before the expensive part
    clock: dict[str, float] = {}
    n_hosts = len(orders.hosts)
    s = _label(orders, timeline, cfg, clock)
    with _background() as pool:
        clusters = block_clusters(s.sub.host, s.sub.start, n_hosts, cfg.block_s)
        draws = pool.submit(replicate_weights, cfg.seed, cfg.reps, clusters.size)
        naive = pool.submit(_naive, s)
        with _timed(clock, "match"):
            period = None
            if chosen is not None and cfg.change_at is not None:
                period = (s.sub.start >= cfg.change_at).astype(np.int64)
            m = _match(s, period, cfg)
        fits = _Fits(_slope_fits(pool, s, m, n_hosts, cfg), {})
        with _timed(clock, "mean"):
            mf = _means(s, m, n_hosts, clusters, draws)
        fits.quantreg.update(_quantreg_fits(pool, s, m.weight, mf, n_hosts, cfg))
        with _timed(clock, "tails"):
            tails = _tails(s, m, mf, fits.slopes)
        m = replace(m, z=np.empty((0, m.z.shape[1])))  # the tails read the z-scores last
        with _timed(clock, "outcomes"):
            outcomes = _outcomes(orders, timeline, s, m, mf, cfg)
        canary_result = None
        if chosen is not None and period is not None:
            with _timed(clock, "canary"):
                canary_result = _canary(orders, chosen, s.sub, s.treated, m.weight, period,
                                        mf.clusters, tails.cf, m.pairs, mf.rep_w, cfg)
        with _timed(clock, "quantreg"):
            quantreg, rows = _quantreg(m.weight, fits.quantreg, cfg)
    matched = _matched(mf, tails, cfg)
    cdt = matched["cdt_p95"]
    return AnalysisResult(
        inputs=_inputs(orders, timeline, s, mf.parts), config=cfg.to_json(),
        labels=s.counts, matching=m, naive=naive.result(), matched=matched, quantreg=quantreg,
        quantreg_rows=rows, parts=_decomposition(mf, cfg),
        tail_curve=_tail_curve(tails), verdict=_verdict(cdt, matched["mean"]),
        attributable=bool(cdt.excludes_zero and (cdt.value or 0) > 0),
        canary=canary_result, timings_s=clock, outcomes=outcomes)


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
