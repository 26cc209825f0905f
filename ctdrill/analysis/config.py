"""The analysis knobs as one frozen value: every stage reads the same thresholds, matching
settings and bootstrap seed, so the sections of one report are comparable."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
    episode_window_s: float = 60.0  # cancel/replace: before/after a pressure episode

    def to_json(self) -> dict[str, object]:
        return asdict(self)
