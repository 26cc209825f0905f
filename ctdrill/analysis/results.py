"""The analysis result as plain frozen data: what every renderer (JSON, Markdown, HTML,
terminal) reads, so they cannot disagree."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ctdrill.analysis.matching import Matching


@dataclass(frozen=True)
class Estimate:
    """A point estimate in bps with its interval and how both were obtained."""

    value: float | None
    lo: float | None = None
    hi: float | None = None
    method: str = ""

    @property
    def excludes_zero(self) -> bool:
        return self.lo is not None and self.hi is not None and (self.lo > 0 or self.hi < 0)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ci_excludes_zero": self.excludes_zero}


@dataclass(frozen=True)
class Part:
    """One decomposition term: its incremental mean under pressure."""

    name: str
    parent: str | None  # "conntrack_bps" for the three conntrack sub-terms
    estimate: Estimate

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "parent": self.parent, **self.estimate.to_json()}


@dataclass(frozen=True)
class CanaryResult:
    """Difference in differences of the CDT: canary pool vs control pool, before vs after."""

    canary_hosts: tuple[str, ...]
    control_hosts: tuple[str, ...]
    change_at: float
    cells: dict[str, dict[str, float | None]]  # "canary/before" -> {cdt_p95, is_p95, ...}
    did: dict[str, Estimate]  # metric -> DiD estimate
    metric: str  # the one the verdict reads
    verdict: str
    infra_causal: bool

    def to_json(self) -> dict[str, Any]:
        return {"canary_hosts": list(self.canary_hosts),
                "control_hosts": list(self.control_hosts), "change_at": self.change_at,
                "cells": self.cells, "did": {k: v.to_json() for k, v in self.did.items()},
                "verdict_metric": self.metric, "verdict": self.verdict,
                "infra_causal": self.infra_causal}


@dataclass(frozen=True)
class Outcome:
    """One execution outcome compared between pressured orders and their matched calm
    stand-ins: the two weighted means, the naive gap and the host-FE matched difference."""

    name: str  # passive_fill_ratio, cancel_replace_per_min, markout_<h>_bps
    comparison: str  # "high vs low", or "before"/"during"/"after" (an episode) "vs calm"
    unit: str
    high: float | None  # weighted mean of the matched pressured orders
    low: float | None  # weighted mean of their matched stand-ins
    naive: float | None  # all pressured minus all compared calm orders, unweighted
    estimate: Estimate  # host-FE WLS on the matched orders, cluster bootstrap CI
    n_high: int  # matched pressured orders with a value
    n_low: int  # matched stand-ins with a value
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "comparison": self.comparison, "unit": self.unit,
                "high": self.high, "low": self.low, "naive": self.naive,
                "n_high": self.n_high, "n_low": self.n_low, "note": self.note,
                **self.estimate.to_json()}


@dataclass(frozen=True)
class OutcomesResult:
    """The execution-outcome sections the log could feed, and why the others were
    skipped (section -> the missing column)."""

    outcomes: tuple[Outcome, ...]
    skipped: dict[str, str]
    window_s: float  # before/after an episode, for cancel/replace
    orders: dict[str, int]  # orders before, during and after episodes, and calm ones

    def to_json(self) -> dict[str, Any]:
        return {"window_s": self.window_s, "orders": self.orders,
                "results": [o.to_json() for o in self.outcomes], "skipped": self.skipped}


@dataclass(frozen=True)
class AnalysisResult:
    inputs: dict[str, Any]
    config: dict[str, Any]
    labels: dict[str, int]
    matching: Matching
    naive: dict[str, float | None]
    matched: dict[str, Estimate]  # mean, cdt_p95, cdt_p99
    quantreg: dict[str, Estimate]  # p95, p99 host-FE quantile regression
    quantreg_rows: int
    parts: tuple[Part, ...]
    tail_curve: dict[str, list[float]]  # q, high, low (matched) for the plot
    verdict: str
    attributable: bool
    canary: CanaryResult | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    outcomes: OutcomesResult | None = None
    features: dict[str, Any] | None = None  # the --features file: path, rows, columns

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs, "config": self.config, "labels": self.labels,
            "matching": self.matching.to_json(), "naive": self.naive,
            "matched": {k: v.to_json() for k, v in self.matched.items()},
            "quantreg": {k: v.to_json() for k, v in self.quantreg.items()},
            "quantreg_rows": self.quantreg_rows,
            "decomposition": [p.to_json() for p in self.parts],
            "tail_curve": self.tail_curve, "verdict": self.verdict,
            "attributable": self.attributable,
            "canary": self.canary.to_json() if self.canary else None,
            "outcomes": self.outcomes.to_json() if self.outcomes else None,
            "features": self.features,
            "timings_s": self.timings_s,
        }
