"""The regime each host was in, over time, for the pressure features: the regime machine of
ctdrill/regime/ with its defaults (docs/REGIME.md) fed the host's samples, the same
machine drills and `watch` run. A timeline carries CTR and NFD only, so HCP95 and OSD
are 0 and SAFE_CONTAIN (it needs a slippage-tail breach) never shows from samples. A
`watch` transition stream already holds the regimes its machine computed: those are
used as they are.

Regimes are kept as step segments (boundaries and levels), so the time an order spent in
each regime is two lookups on cumulative sums, and the regime at an instant one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from ctdrill.analysis.data import F64, I64
from ctdrill.regime import Regime, RegimeConfig, RegimeInput, RegimeState, step

I8 = NDArray[np.int8]
REGIMES: tuple[Regime, ...] = tuple(sorted(Regime, key=lambda r: r.level))
UNKNOWN = -1  # outside the samples' span: no regime observed


def _next_off(on: NDArray[np.bool_]) -> I64:
    """For each row, the first row at or after it where `on` is False (n if none)."""
    n = on.size
    off_at = np.where(on, n, np.arange(n))
    return np.asarray(np.minimum.accumulate(off_at[::-1])[::-1], dtype=np.int64)


def _run_start(t: F64, on: NDArray[np.bool_]) -> F64:
    """For each row, the time of the first row of the run of `on` it is in (NaN if off):
    the machine's sustain and quiet timers, which depend on the samples alone."""
    idx = np.arange(on.size)
    last_off = np.maximum.accumulate(np.where(on, -1, idx))
    return np.where(on, t[np.minimum(last_off + 1, on.size - 1)], np.nan)


def _timer(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def machine_levels(t: F64, ctr: F64, nfd: F64, cfg: RegimeConfig | None = None) -> I8:
    """The machine's regime level after each sample of one host (t non-decreasing).

    Runs of samples that cannot move the regime are skipped, not stepped: calm samples
    (below every enter threshold) while HEALTHY; CTR at or over the pressured exit while
    PRESSURED; CTR in the tightening band (exit .. pressured enter) without drops over
    the enter threshold while TIGHTENING. In such a run the regime, its entry time and
    its episodes stay; what moves are the sustain and quiet timers, which depend only on
    the samples, so they are set to their value at the run's last sample. Exact for the
    levels (a unit test feeds every sample and compares); only the samples near a change
    are stepped (about 10-20 us each)."""
    cfg = cfg or RegimeConfig()
    ctr, nfd = np.maximum(ctr, 0.0), np.maximum(nfd, 0.0)
    no_drops = nfd < cfg.nfd_pressured_enter_per_s
    below_p = ctr < cfg.ctr_pressured_enter
    holds = {0: (ctr < cfg.ctr_tightening_enter) & below_p & no_drops,
             1: (ctr >= cfg.ctr_tightening_exit) & below_p & no_drops,
             2: ctr >= cfg.ctr_pressured_exit}
    nxt = {lv: _next_off(on) for lv, on in holds.items()}
    high_since = _run_start(t, ctr >= cfg.ctr_pressured_enter)
    quiet_since = _run_start(t, nfd < cfg.nfd_pressured_exit_per_s)
    levels = np.zeros(t.size, dtype=np.int8)
    state = RegimeState()
    i = 0
    while i < t.size:
        state, _ = step(state, RegimeInput(t=float(t[i]), ctr=float(ctr[i]),
                                           nfd_per_s=float(nfd[i])), cfg)
        lv = state.regime.level
        levels[i] = lv
        if lv not in holds or not holds[lv][i]:
            i += 1
            continue
        j = int(nxt[lv][i])
        levels[i + 1:j] = lv
        state = replace(state, last_t=float(t[j - 1]),
                        ctr_high_since=_timer(high_since[j - 1]),
                        nfd_quiet_since=_timer(quiet_since[j - 1]))
        i = j
    return levels


def segments(t: F64, levels: I8, lo: float, hi: float) -> tuple[F64, I8]:
    """Step segments from per-row levels: each level holds from its row's time until the
    next change; the first from `lo`, the last until `hi`. Returns K+1 boundaries and K
    levels."""
    keep = np.concatenate([[0], np.flatnonzero(levels[1:] != levels[:-1]) + 1])
    bounds = np.concatenate([[lo], t[keep[1:]], [max(hi, lo)]])
    return np.asarray(bounds, dtype=np.float64), levels[keep]


def occupancy(bounds: F64, levels: I8, a: F64, b: F64) -> F64:
    """Seconds of each window [a, b] spent in each regime (N x 4), inside the segments'
    span only (time outside it is unobserved and counted nowhere)."""
    onehot = (levels[:, None] == np.arange(len(REGIMES))).astype(np.float64)
    cum = np.vstack([np.zeros(len(REGIMES)), np.cumsum(onehot * np.diff(bounds)[:, None],
                                                       axis=0)])

    def at(x: F64) -> F64:
        x = np.clip(x, bounds[0], bounds[-1])
        j = np.clip(np.searchsorted(bounds, x, side="right") - 1, 0, levels.size - 1)
        return np.asarray(cum[j] + onehot[j] * (x - bounds[j])[:, None], dtype=np.float64)

    return np.maximum(at(b) - at(a), 0.0)


def level_at(bounds: F64, levels: I8, x: F64) -> I64:
    """The regime level in force at each x; UNKNOWN outside the segments' span."""
    j = np.clip(np.searchsorted(bounds, x, side="right") - 1, 0, levels.size - 1)
    inside = (x >= bounds[0]) & (x <= bounds[-1])
    return np.asarray(np.where(inside, levels[j], UNKNOWN), dtype=np.int64)
