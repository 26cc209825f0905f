"""Synthetic execution logs and pressure timelines with a known injected CDT.

For the validation tests and the benchmark: the generator knows each order's shortfall
without the conntrack term (y0), so the true effects on high-pressure orders are exact,
not estimated. Market volatility follows a slow AR(1) with a time-of-day shape; it drives
spread and the timing cost, and, with `confound` > 0, also the rate of pressure episodes
(busy markets fill the table), which biases a naive high-vs-low comparison.
Exposure is computed here independently of `labels` (on the integer-second grid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ctdrill.analysis.data import F64

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


@dataclass(frozen=True)
class SynthData:
    orders: Any  # DataFrame: the execution log
    timeline: Any  # DataFrame: t, host, count, max, drops (node_exporter-like)
    exposed: np.ndarray[Any, np.dtype[np.bool_]]
    truth: dict[str, float] = field(default_factory=dict)
    change_at: float = 0.0


def _nearest_rank(x: F64, q: float) -> float:
    s = np.sort(x)
    return float(s[min(s.size - 1, max(0, int(np.ceil(q * s.size)) - 1))])


def _ar1(rng: np.random.Generator, n: int, phi: float) -> F64:
    e = rng.normal(size=n) * np.sqrt(1 - phi * phi)
    z = np.empty(n)
    z[0] = rng.normal()
    for i in range(1, n):
        z[i] = phi * z[i - 1] + e[i]
    return z


def generate(spec: SynthSpec) -> SynthData:
    rng = np.random.default_rng(spec.seed)
    h, s = spec.hosts, spec.span_s
    n_min = s // 60 + 1
    z = _ar1(rng, n_min, 0.97)
    hour_min = ((np.arange(n_min) * 60) % 86_400) / 3600
    tod = 1 + 0.25 * np.cos(2 * np.pi * (hour_min - 14.5) / 24)
    vol_min = 0.8 * np.exp(0.35 * z) * tod

    # pressure episodes per host: Poisson starts per minute, rate tied to volatility
    lam = spec.episodes_per_hour / 60 * np.exp(spec.confound * z - spec.confound ** 2 / 2)
    starts_per = rng.poisson(np.broadcast_to(lam, (h, n_min)))
    host_of, minute_of = np.nonzero(starts_per)
    reps = starts_per[host_of, minute_of]
    host_of, minute_of = np.repeat(host_of, reps), np.repeat(minute_of, reps)
    ep_start = np.minimum(minute_of * 60 + rng.integers(0, 60, host_of.size), s - 1)
    ep_len = 5 + np.ceil(rng.exponential(spec.episode_mean_s - 5, host_of.size))
    ep_end = np.minimum(ep_start + ep_len.astype(np.int64), s)
    marks = np.zeros(h * (s + 1), dtype=np.int32)
    np.add.at(marks, host_of * (s + 1) + ep_start, 1)
    np.add.at(marks, host_of * (s + 1) + ep_end, -1)
    in_ep = np.cumsum(marks.reshape(h, s + 1), axis=1)[:, :s] > 0

    # timeline: 1 Hz per host; CTR < 0.6 outside episodes, >= 0.91 inside, drops inside
    u = rng.random((h, s), dtype=np.float32)
    ctr = np.where(in_ep, 0.91 + 0.08 * u, 0.3 + 0.3 * u)
    drops = np.cumsum(np.where(in_ep, rng.poisson(20, (h, s)), 0), axis=1)
    names = [f"gw-{i:02d}" for i in range(h)]
    timeline = pd.DataFrame({
        "t": np.tile(T0 + np.arange(s, dtype=np.float64), h),
        "host": pd.Categorical.from_codes(np.repeat(np.arange(h), s), categories=names),
        "count": np.round(ctr * TABLE_MAX).astype(np.int64).ravel(),
        "max": np.full(h * s, TABLE_MAX, dtype=np.int64),
        "drops": drops.ravel(),
    })

    # orders
    n = spec.orders
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

    impact = 0.4 * spread + 12 * vol * np.sqrt(part)
    timing = 2.5 * vol * rng.standard_t(4, n)
    routing = rng.uniform(0, 3, h)[host] + 0.3 * rng.normal(size=n)
    hit = exposed & (rng.random(n) < 0.4)
    drop_gap = np.where(hit, spec.effect_bps * (1 + rng.exponential(1.0, n)), 0.0)
    skew = np.where(exposed, 0.3 * spec.effect_bps * rng.exponential(1.0, n), 0.0)
    burst = np.where(exposed, 0.1 * spec.effect_bps * np.abs(rng.normal(size=n)), 0.0)
    change_at = T0 + spec.change_frac * s
    on_canary = (host < spec.canary_hosts) & (start >= change_at)
    keep = np.where(on_canary, 1 - spec.canary_removes, 1.0)
    drop_gap, skew, burst = drop_gap * keep, skew * keep, burst * keep
    ct = drop_gap + skew + burst
    is_bps = impact + timing + routing + ct
    orders = pd.DataFrame({
        "order_id": np.arange(n), "host": np.asarray(names)[host], "start": start,
        "end": end, "is_bps": is_bps, "spread_bps": spread, "volatility": vol,
        "participation": part, "impact_bps": impact, "timing_bps": timing,
        "routing_bps": routing, "drop_gap_bps": drop_gap, "state_skew_bps": skew,
        "burst_recovery_bps": burst,
    })
    y0 = is_bps - ct
    truth = {"mean": float(ct[exposed].mean()),
             "cdt_p95": _nearest_rank(is_bps[exposed], 0.95)
             - _nearest_rank(y0[exposed], 0.95),
             "cdt_p99": _nearest_rank(is_bps[exposed], 0.99)
             - _nearest_rank(y0[exposed], 0.99),
             "drop_gap_bps": float(drop_gap[exposed].mean()),
             "state_skew_bps": float(skew[exposed].mean()),
             "burst_recovery_bps": float(burst[exposed].mean()),
             "exposed_share": float(exposed.mean())}
    if spec.canary_hosts:
        cell = {}
        for pool, pflag in (("canary", True), ("control", False)):
            for period, aflag in (("before", False), ("after", True)):
                sel = exposed & ((host < spec.canary_hosts) == pflag) & \
                    ((start >= change_at) == aflag)
                cell[(pool, period)] = (_nearest_rank(is_bps[sel], 0.95)
                                        - _nearest_rank(y0[sel], 0.95))
        truth["did_cdt_p95"] = ((cell["canary", "after"] - cell["canary", "before"])
                                - (cell["control", "after"] - cell["control", "before"]))
    return SynthData(orders, timeline, exposed, truth, change_at)
