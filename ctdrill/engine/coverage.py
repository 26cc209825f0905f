"""How much of a time window a host's telemetry really covered (pure).

A verdict over windows is only as good as the samples behind it: "max = 65536 over 20
windows" means nothing if those windows came from the first second of a 20 s drill.
A host counts as observed at any moment within `stall_after_s(hz)` (a few sample
periods) after one of its samples arrived, the same limit after which a live stream is
declared stalled; coverage is the fraction of a window during which it was observed.
docs/DRILL-SPEC.md ("Coverage") is the user-facing definition.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

STALL_PERIODS = 5
"""A host is silent once this many sample periods pass without a sample ..."""
STALL_FLOOR_S = 1.5
"""... but never sooner than this: on a busy 2-core machine (a surge at the packet
ceiling saturates a core) an agent can be descheduled for most of a second."""
REQUIRED_COVERAGE = 0.9
"""Default fraction of an expectation's window that samples must cover."""


def stall_after_s(hz: float) -> float:
    """The longest gap between two samples that still counts as a live stream."""
    return max(STALL_PERIODS / hz, STALL_FLOOR_S)


@dataclass(frozen=True)
class CoveragePolicy:
    """The gap that breaks coverage and the coverage an expectation needs."""

    max_gap_s: float = field(default_factory=lambda: STALL_FLOOR_S)
    required: float = REQUIRED_COVERAGE

    @classmethod
    def for_hz(cls, hz: float, required: float = REQUIRED_COVERAGE) -> CoveragePolicy:
        return cls(stall_after_s(hz), required)


def coverage(times: Iterable[float], lo: float, hi: float, max_gap_s: float) -> float:
    """Fraction of [lo, hi] lying within `max_gap_s` after some sample's arrival.

    An empty or unbounded window has nothing that could be judged: coverage 0.
    """
    span = hi - lo
    if not (span > 0 and math.isfinite(span)):
        return 0.0
    covered, reach = 0.0, lo
    for t in sorted(times):
        end = min(t + max_gap_s, hi)
        covered += max(0.0, end - max(t, reach))
        reach = max(reach, end)
    return min(1.0, covered / span)


def percent(fraction: float) -> str:
    """Whole percent rounded down, so a failing 89.6 % never reads as the 90 % it needs."""
    return f"{math.floor(fraction * 100 + 1e-9)} %"
