"""Synthetic execution logs and pressure timelines with a known injected CDT.

For the validation tests and the benchmark: the generator knows each order's shortfall
without the conntrack term (y0), so the true effects on high-pressure orders are exact,
not estimated. The same holds for the execution outcomes (passive fill ratio,
cancel/replace counts before/during/after episodes, 1 s and 10 s markouts): each is drawn
without pressure and with the injected effect added, from a generator of its own, so
adding them left every other column as it was.

Market volatility follows a slow AR(1) with a time-of-day shape; it drives
spread and the timing cost, and, with `confound` > 0, also the rate of pressure episodes
(busy markets fill the table), which biases a naive high-vs-low comparison.
Exposure is computed here independently of `labels` (on the integer-second grid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ctdrill.analysis.data import F64, I64
from ctdrill.metrics.quantile import weighted_nearest_rank

Bool2D = NDArray[np.bool_]
CT_TERMS = ("drop_gap_bps", "state_skew_bps", "burst_recovery_bps")

T0 = 1_714_521_600.0  # 2024-05-01T00:00:00Z
TABLE_MAX = 262_144


@dataclass(frozen=True)
class SynthSpec:
    orders: int = 20_000
    hosts: int = 5
    span_s: int = 86_400
    seed: int = 1
    confound: float = 0.0  # log-rate of pressure episodes per unit of volatility z-score
    effect_bps: float = 4.0  # scale of the injected conntrack term
    episodes_per_hour: float = 6.0  # per host, at average volatility
    episode_mean_s: float = 30.0
    canary_hosts: int = 0  # the first hosts form the canary pool
    change_frac: float = 0.5  # the change lands at this fraction of the span
    canary_removes: float = 1.0  # share of the conntrack term the change removes on canary
    episode_window_s: float = 60.0  # cancel/replace: the windows before and after episodes
    fill_effect: float = -0.08  # passive fill ratio change on exposed orders (on average)
    cr_effects_per_min: tuple[float, float, float] = (1.0, 3.0, 2.0)  # before/during/after
    markout_effects_bps: tuple[float, float] = (1.0, 2.5)  # markout_1s_bps, markout_10s_bps


@dataclass(frozen=True)
class SynthData:
    orders: Any  # DataFrame: the execution log
    timeline: Any  # DataFrame: t, host, count, max, drops (node_exporter-like)
    exposed: np.ndarray[Any, np.dtype[np.bool_]]
    truth: dict[str, float] = field(default_factory=dict)
    change_at: float = 0.0


def _p(x: F64, q: float) -> float:
    """The nearest-rank quantile (metrics/quantile.py) of an array; NaN for none."""
    v = weighted_nearest_rank(x, np.ones_like(x), q)
    return float("nan") if v is None else v


def _ar1(rng: np.random.Generator, n: int, phi: float) -> F64:
    e = rng.normal(size=n) * np.sqrt(1 - phi * phi)
    z = np.empty(n)
    z[0] = rng.normal()
    for i in range(1, n):
        z[i] = phi * z[i - 1] + e[i]
    return z


def _market(rng: np.random.Generator, spec: SynthSpec) -> tuple[F64, F64]:
    """Per minute: the AR(1) volatility z-score and the volatility (time-of-day shaped)."""
    n_min = spec.span_s // 60 + 1
    z = _ar1(rng, n_min, 0.97)
    hour_min = ((np.arange(n_min) * 60) % 86_400) / 3600
    tod = 1 + 0.25 * np.cos(2 * np.pi * (hour_min - 14.5) / 24)
    return z, 0.8 * np.exp(0.35 * z) * tod


def _episodes(rng: np.random.Generator, spec: SynthSpec, z: F64) -> Bool2D:
    """Pressure episodes per host (hosts x seconds): Poisson starts per minute, the rate
    tied to volatility by `confound`."""
    h, s = spec.hosts, spec.span_s
    lam = spec.episodes_per_hour / 60 * np.exp(spec.confound * z - spec.confound ** 2 / 2)
    starts_per = rng.poisson(np.broadcast_to(lam, (h, z.size)))
    host_of, minute_of = np.nonzero(starts_per)
    reps = starts_per[host_of, minute_of]
    host_of, minute_of = np.repeat(host_of, reps), np.repeat(minute_of, reps)
    ep_start = np.minimum(minute_of * 60 + rng.integers(0, 60, host_of.size), s - 1)
    ep_len = 5 + np.ceil(rng.exponential(spec.episode_mean_s - 5, host_of.size))
    ep_end = np.minimum(ep_start + ep_len.astype(np.int64), s)
    marks = np.zeros(h * (s + 1), dtype=np.int32)
    np.add.at(marks, host_of * (s + 1) + ep_start, 1)
    np.add.at(marks, host_of * (s + 1) + ep_end, -1)
    return np.asarray(np.cumsum(marks.reshape(h, s + 1), axis=1)[:, :s] > 0)


def _timeline(rng: np.random.Generator, spec: SynthSpec, in_ep: Bool2D,
              names: list[str]) -> pd.DataFrame:
    """1 Hz per host; CTR < 0.6 outside episodes, >= 0.91 inside, drops inside."""
    h, s = spec.hosts, spec.span_s
    u = rng.random((h, s), dtype=np.float32)
    ctr = np.where(in_ep, 0.91 + 0.08 * u, 0.3 + 0.3 * u)
    drops = np.cumsum(np.where(in_ep, rng.poisson(20, (h, s)), 0), axis=1)
    return pd.DataFrame({
        "t": np.tile(T0 + np.arange(s, dtype=np.float64), h),
        "host": pd.Categorical.from_codes(np.repeat(np.arange(h), s), categories=names),
        "count": np.round(ctr * TABLE_MAX).astype(np.int64).ravel(),
        "max": np.full(h * s, TABLE_MAX, dtype=np.int64),
        "drops": drops.ravel(),
    })


@dataclass(frozen=True)
class _Orders:
    """The orders' draws before their costs, and which met an episode."""

    host: I64
    start: F64
    end: F64
    vol: F64
    spread: F64
    part: F64
    exposed: NDArray[np.bool_]


def _orders(rng: np.random.Generator, spec: SynthSpec, vol_min: F64, in_ep: Bool2D) -> _Orders:
    h, s, n = spec.hosts, spec.span_s, spec.orders
    host = rng.integers(0, h, n)
    start = T0 + rng.uniform(1, s - 400, n)
    end = start + np.minimum(np.exp(np.log(4.0) + rng.normal(size=n)), 300)
    minute = ((start - T0) // 60).astype(np.int64)
    vol = vol_min[minute] * np.exp(0.1 * rng.normal(size=n))
    spread = 0.8 + 1.5 * vol * np.exp(0.25 * rng.normal(size=n))
    part = rng.uniform(0.02, 0.25, n)
    ep_cum = np.concatenate([np.zeros((h, 1), dtype=np.int64),
                             np.cumsum(in_ep, axis=1)], axis=1)
    lo = np.clip(np.ceil(start - 0.5 - T0), 0, s).astype(np.int64)
    hi = np.clip(np.floor(end + 0.5 - T0), -1, s - 1).astype(np.int64)
    exposed = ep_cum[host, hi + 1] - ep_cum[host, lo] > 0
    return _Orders(host, start, end, vol, spread, part, exposed)


def _costs(rng: np.random.Generator, spec: SynthSpec, o: _Orders,
           change_at: float) -> dict[str, F64]:
    """Each shortfall term per order; the conntrack terms only on exposed orders, and
    removed (by `canary_removes`) on canary hosts after the change."""
    n, exposed = spec.orders, o.exposed
    impact = 0.4 * o.spread + 12 * o.vol * np.sqrt(o.part)
    timing = 2.5 * o.vol * rng.standard_t(4, n)
    routing = rng.uniform(0, 3, spec.hosts)[o.host] + 0.3 * rng.normal(size=n)
    hit = exposed & (rng.random(n) < 0.4)
    drop_gap = np.where(hit, spec.effect_bps * (1 + rng.exponential(1.0, n)), 0.0)
    skew = np.where(exposed, 0.3 * spec.effect_bps * rng.exponential(1.0, n), 0.0)
    burst = np.where(exposed, 0.1 * spec.effect_bps * np.abs(rng.normal(size=n)), 0.0)
    on_canary = (o.host < spec.canary_hosts) & (o.start >= change_at)
    keep = np.where(on_canary, 1 - spec.canary_removes, 1.0)
    return {"impact_bps": impact, "timing_bps": timing, "routing_bps": routing,
            "drop_gap_bps": drop_gap * keep, "state_skew_bps": skew * keep,
            "burst_recovery_bps": burst * keep}


def _truth(spec: SynthSpec, o: _Orders, c: dict[str, F64], ct: F64, is_bps: F64,
           change_at: float) -> dict[str, float]:
    """The exact effects on exposed orders: with and without the conntrack term."""
    exposed, y0 = o.exposed, is_bps - ct
    truth = {"mean": float(ct[exposed].mean()),
             "cdt_p95": _p(is_bps[exposed], 0.95) - _p(y0[exposed], 0.95),
             "cdt_p99": _p(is_bps[exposed], 0.99) - _p(y0[exposed], 0.99),
             **{k: float(c[k][exposed].mean()) for k in CT_TERMS},
             "exposed_share": float(exposed.mean())}
    if spec.canary_hosts:
        cell = {}
        for pool, pflag in (("canary", True), ("control", False)):
            for period, aflag in (("before", False), ("after", True)):
                sel = exposed & ((o.host < spec.canary_hosts) == pflag) & \
                    ((o.start >= change_at) == aflag)
                cell[(pool, period)] = _p(is_bps[sel], 0.95) - _p(y0[sel], 0.95)
        truth["did_cdt_p95"] = ((cell["canary", "after"] - cell["canary", "before"])
                                - (cell["control", "after"] - cell["control", "before"]))
    return truth


def _windows(spec: SynthSpec, o: _Orders, in_ep: Bool2D) -> tuple[NDArray[np.bool_], ...]:
    """Orders (not exposed) with an episode second within the window after their own
    window (before an episode) or before it (after one), on the 1 Hz grid, computed here
    independently of `labels` (same float order of operations as its windows)."""
    h, s, w = spec.hosts, spec.span_s, spec.episode_window_s
    ep_cum = np.concatenate([np.zeros((h, 1), dtype=np.int64), np.cumsum(in_ep, axis=1)],
                            axis=1)

    def any_in(a: F64, b: F64) -> NDArray[np.bool_]:
        lo = np.clip(np.ceil(a - T0), 0, s).astype(np.int64)
        hi = np.clip(np.floor(b - T0), -1, s - 1).astype(np.int64)
        return np.asarray(ep_cum[o.host, hi + 1] - ep_cum[o.host, lo] > 0)

    before = any_in(o.end + 0.5, o.end + 0.5 + w) & ~o.exposed
    after = any_in(o.start - 0.5 - w, o.start - 0.5) & ~o.exposed
    return before, after


def _outcome_columns(spec: SynthSpec, o: _Orders,
                     in_ep: Bool2D) -> tuple[dict[str, F64], dict[str, float]]:
    """Execution outcomes with their injected effects, and the exact truth on the orders
    each effect applies to (those with a value)."""
    rng = np.random.default_rng((spec.seed, 15))
    n, exposed = spec.orders, o.exposed
    unfilled = rng.random(n) < 0.03  # no fill: no passive fill ratio, no markout
    lin = 0.6 - 1.5 * (o.vol - 0.8) - 6 * (o.part - 0.135) + 0.6 * rng.normal(size=n)
    ratio0 = 0.15 + 0.7 / (1 + np.exp(-lin))
    ratio = np.clip(ratio0 + np.where(exposed, spec.fill_effect * rng.uniform(0.5, 1.5, n),
                                      0.0), 0, 1)
    before, after = _windows(spec, o, in_ep)
    life = o.end - o.start
    base = rng.poisson((2.0 + 2.5 * o.vol + 12 * o.part) * life / 60)
    b, d, a = spec.cr_effects_per_min
    extra = rng.poisson((b * before + d * exposed + a * after) * life / 60)
    cancels = rng.binomial(base + extra, 0.4)
    cols = {"passive_fill_ratio": np.where(unfilled, np.nan, ratio),
            "cancels": cancels.astype(np.float64),
            "replaces": (base + extra - cancels).astype(np.float64)}
    filled = exposed & ~unfilled
    truth = {"passive_fill_ratio": float((ratio - ratio0)[filled].mean())}
    extra_rate = extra / life * 60  # life > 0: a lognormal draw
    for name, flag in (("before", before), ("during", exposed), ("after", after)):
        truth[f"cancel_replace_{name}"] = float(extra_rate[flag].mean())
    for (name, spread_k, vol_k), eff in zip((("markout_1s_bps", 0.3, 1.0),
                                             ("markout_10s_bps", 0.5, 3.0)),
                                            spec.markout_effects_bps, strict=True):
        hit = exposed & (rng.random(n) < 0.5)
        injected = np.where(hit, 2 * eff * rng.exponential(1.0, n), 0.0)
        y0 = spread_k * o.spread + vol_k * o.vol * rng.standard_t(4, n)
        cols[name] = np.where(unfilled, np.nan, y0 + injected)
        truth[name] = float(injected[filled].mean())
    return cols, truth


def generate(spec: SynthSpec) -> SynthData:
    """The execution log, the pressure timeline and the exact truth, from one seed."""
    rng = np.random.default_rng(spec.seed)
    z, vol_min = _market(rng, spec)
    in_ep = _episodes(rng, spec, z)
    names = [f"gw-{i:02d}" for i in range(spec.hosts)]
    timeline = _timeline(rng, spec, in_ep, names)
    o = _orders(rng, spec, vol_min, in_ep)
    change_at = T0 + spec.change_frac * spec.span_s
    c = _costs(rng, spec, o, change_at)
    ct = c["drop_gap_bps"] + c["state_skew_bps"] + c["burst_recovery_bps"]
    is_bps = c["impact_bps"] + c["timing_bps"] + c["routing_bps"] + ct
    orders = pd.DataFrame({
        "order_id": np.arange(spec.orders), "host": np.asarray(names)[o.host],
        "start": o.start, "end": o.end, "is_bps": is_bps, "spread_bps": o.spread,
        "volatility": o.vol, "participation": o.part, **c,
    })
    extra, truth_outcomes = _outcome_columns(spec, o, in_ep)
    orders = orders.assign(**extra)
    truth = {**_truth(spec, o, c, ct, is_bps, change_at), **truth_outcomes}
    return SynthData(orders, timeline, o.exposed, truth, change_at)
