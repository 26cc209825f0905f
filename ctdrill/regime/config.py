"""Thresholds and dwells of the regime machine, validated once so `step` can trust them.

Every signal has an ENTER threshold (reach it: the regime it drives is entered) and a
lower EXIT threshold (fall below it: the signal stops holding that regime up). Between
the two is the hysteresis band, where nothing changes; that band is what keeps a
signal jittering around one number from flapping the regime and the router with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ctdrill.regime.states import Regime


@dataclass(frozen=True)
class RegimeConfig:
    """Plain, validated settings; `RegimeSpec.to_config()` builds one from a drill spec.

    Comparisons: a value enters at `>= enter` and releases at `< exit`.
    """

    ctr_tightening_enter: float = 0.70
    ctr_tightening_exit: float = 0.60
    ctr_pressured_enter: float = 0.90
    ctr_pressured_exit: float = 0.80
    ctr_sustain_s: float = 1.0
    hcp95_tightening_enter: int = 6
    hcp95_tightening_exit: int = 5
    osd_tightening_enter_ms: float = 50.0
    osd_tightening_exit_ms: float = 20.0
    nfd_pressured_enter_per_s: float = 1.0
    nfd_pressured_exit_per_s: float = 0.5
    nfd_quiet_s: float = 2.0
    episodes: int = 2
    episode_window_s: float = 60.0
    dwell_tightening_s: float = 3.0
    dwell_pressured_s: float = 5.0
    dwell_safe_contain_s: float = 30.0

    def __post_init__(self) -> None:
        problems = config_problems(self)
        if problems:
            raise ValueError("; ".join(problems))

    def dwell_s(self, regime: Regime) -> float:
        """Minimum time in `regime` before it may de-escalate (HEALTHY: 0, nothing below)."""
        return {Regime.HEALTHY: 0.0, Regime.TIGHTENING: self.dwell_tightening_s,
                Regime.PRESSURED: self.dwell_pressured_s,
                Regime.SAFE_CONTAIN: self.dwell_safe_contain_s}[regime]


def config_problems(cfg: RegimeConfig) -> list[str]:
    """Every rule `cfg` breaks, as messages naming the fields (empty: valid)."""
    out: list[str] = []
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            out.append(f"{f.name} must be a number, not {value!r}")
        elif not math.isfinite(value):
            out.append(f"{f.name} must be finite")
    if out:
        return out

    def below(low: str, high: str) -> None:
        lo, hi = getattr(cfg, low), getattr(cfg, high)
        if not lo < hi:
            out.append(f"{low} ({lo:g}) must be below {high} ({hi:g}): the exit threshold "
                       "sits under the enter threshold, or the regime flaps")

    def not_above(low: str, high: str, why: str) -> None:
        lo, hi = getattr(cfg, low), getattr(cfg, high)
        if lo > hi:
            out.append(f"{low} ({lo:g}) must not exceed {high} ({hi:g}): {why}")

    for name in ("ctr_tightening_exit", "ctr_pressured_exit", "osd_tightening_exit_ms",
                 "nfd_pressured_exit_per_s", "episode_window_s"):
        if getattr(cfg, name) <= 0:
            out.append(f"{name} must be > 0, or nothing could ever fall below it")
    for name in ("ctr_tightening_enter", "ctr_pressured_enter"):
        if getattr(cfg, name) > 1:
            out.append(f"{name} must be <= 1 (CTR is count / max)")
    if cfg.hcp95_tightening_exit < 1:
        out.append("hcp95_tightening_exit must be >= 1, or HCP95 could never fall below it")
    for name in ("hcp95_tightening_enter", "hcp95_tightening_exit", "episodes"):
        if not isinstance(getattr(cfg, name), int):
            out.append(f"{name} must be an integer")
    if cfg.episodes < 1:
        out.append("episodes must be >= 1")
    for name in ("ctr_sustain_s", "nfd_quiet_s", "dwell_tightening_s", "dwell_pressured_s",
                 "dwell_safe_contain_s"):
        if getattr(cfg, name) < 0:
            out.append(f"{name} must be >= 0")
    below("ctr_tightening_exit", "ctr_tightening_enter")
    below("ctr_pressured_exit", "ctr_pressured_enter")
    below("hcp95_tightening_exit", "hcp95_tightening_enter")
    below("osd_tightening_exit_ms", "osd_tightening_enter_ms")
    below("nfd_pressured_exit_per_s", "nfd_pressured_enter_per_s")
    not_above("ctr_tightening_enter", "ctr_pressured_enter",
              "tightening comes before pressure")
    not_above("ctr_tightening_exit", "ctr_pressured_exit",
              "pressure must release before tightening does")
    return out
