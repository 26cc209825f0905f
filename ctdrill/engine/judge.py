"""Expectations after the run and guards during it, as pure functions of window metrics."""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.spec.models import Ceiling

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq,
}


def statistic(values: Sequence[float], stat: str) -> float:
    if stat == "max":
        return max(values)
    if stat == "min":
        return min(values)
    if stat == "mean":
        return statistics.fmean(values)
    if stat == "last":
        return values[-1]
    if stat == "p95":
        return sorted(values)[min(len(values) - 1, int(0.95 * len(values)))]
    raise ValueError(f"unknown statistic {stat}")


@dataclass(frozen=True)
class Verdict:
    name: str
    passed: bool
    observed: float | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def ceiling_breach(ceiling: Ceiling, hosts: set[str], host: str,
                   m: WindowMetrics) -> str | None:
    """A reason to abort when `host` is protected by the ceiling and is above it."""
    if host not in hosts:
        return None
    value = float(getattr(m, ceiling.metric))
    if value > ceiling.above:
        return f"guard: {ceiling.metric} on {host} is {value:.4g} > {ceiling.above:g}"
    return None
