"""The two inputs in canonical, columnar form: arrays, not DataFrames, so the core is typed
and every estimator sees the same units (epoch seconds, bps, host codes)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

# The IS decomposition: top-level parts and the split of the conntrack term.
TOP_PARTS = ("impact_bps", "timing_bps", "routing_bps", "conntrack_bps")
CT_PARTS = ("drop_gap_bps", "state_skew_bps", "burst_recovery_bps")
# Execution outcomes (docs/ANALYSIS.md "Execution outcomes"): what the log may carry, as the
# loader derives them. Markouts are every `markout_<horizon>_bps` column.
PASSIVE_FILL = "passive_fill_ratio"
CANCEL_REPLACE = "cancel_replace_per_min"
DAY_S = 86400.0


def hour_of_day(start: F64) -> F64:
    """UTC hour of day in [0, 24): the session clock the desk trades on, up to an offset."""
    return np.asarray((start % DAY_S) / 3600.0, dtype=np.float64)


@dataclass(frozen=True)
class OrderLog:
    """Parent orders; `host` indexes `hosts`. `parts` holds the decomposition columns the
    log has (a missing conntrack_bps is derived from its three parts when they exist)."""

    source: str
    hosts: tuple[str, ...]
    host: I64
    start: F64
    end: F64
    is_bps: F64
    spread_bps: F64
    volatility: F64
    participation: F64
    parts: dict[str, F64] = field(default_factory=dict)
    outcomes: dict[str, F64] = field(default_factory=dict)
    """Execution outcomes by name (PASSIVE_FILL, CANCEL_REPLACE, markout_*_bps); NaN
    where an order has no value (e.g. no fill, so no passive fill ratio)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Outcome sections the log cannot feed -> the column that is missing."""
    order_id: NDArray[Any] | None = None
    """The log's own order ids, as read (the features file's key)."""

    def __len__(self) -> int:
        return int(self.host.size)

    @functools.cached_property
    def covariates(self) -> F64:
        """N x 3 [spread, volatility, participation], made once per log: the CDT's
        matching and the cancel/replace windows read the same matrix (240 MB at ten
        million orders, so not one copy per reader)."""
        return np.column_stack([self.spread_bps, self.volatility, self.participation])

    @functools.cached_property
    def hour(self) -> F64:
        """`hour_of_day` of every order's start, made once per log like `covariates`."""
        return hour_of_day(self.start)

    def subset(self, mask: NDArray[np.bool_]) -> OrderLog:
        return OrderLog(self.source, self.hosts, self.host[mask], self.start[mask],
                        self.end[mask], self.is_bps[mask], self.spread_bps[mask],
                        self.volatility[mask], self.participation[mask],
                        {k: v[mask] for k, v in self.parts.items()},
                        {k: v[mask] for k, v in self.outcomes.items()}, self.skipped,
                        None if self.order_id is None else self.order_id[mask])


@dataclass(frozen=True)
class Timeline:
    """Per-host pressure samples, sorted by (host, t); host i's rows are
    offsets[i]:offsets[i+1] (CSR layout: one array per field, no per-host objects).
    `step`: the rows are state changes (watch transitions) that hold until the next."""

    source: str
    hosts: tuple[str, ...]
    offsets: I64
    t: F64
    ctr: F64
    nfd_per_s: F64
    step: bool = False
    regime: NDArray[np.int8] | None = None
    """For watch transitions: the level (0 healthy .. 3 safe contain) each row enters."""

    def __len__(self) -> int:
        return int(self.t.size)

    def span(self) -> tuple[float, float]:
        return (float(self.t.min()), float(self.t.max())) if self.t.size else (0.0, 0.0)
