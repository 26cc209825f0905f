"""What the observe step hands the judge: the observation's record (pure data).

A leaf: the judge (engine/judge.py) reads it and the observe step
(lifecycle/observe.py) fills it, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ctdrill.engine.coverage import CoveragePolicy
from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.probe.metrics import Message, PressureSample
from ctdrill.regime.machine import Transition


@dataclass
class StepSpan:
    name: str
    start: float
    end: float


@dataclass
class ObservationResult:
    started: float
    load_start: float | None = None
    history: dict[str, list[WindowMetrics]] = field(default_factory=dict)
    transitions: dict[str, list[Transition]] = field(default_factory=dict)
    final_regime: dict[str, str] = field(default_factory=dict)
    steps: list[StepSpan] = field(default_factory=list)
    loads: list[dict[str, Any]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    class_series: dict[tuple[str, str, int], list[tuple[float, int]]] = field(
        default_factory=dict)
    span: tuple[float, float] | None = None
    """Wall-clock start and end of the observation once every stream was open: the
    window a whole-run expectation must cover."""
    arrivals: dict[str, list[float]] = field(default_factory=dict)
    """Wall-clock arrival of every sample, per host (coverage)."""
    coverage: CoveragePolicy = field(default_factory=CoveragePolicy)
    lost: list[dict[str, Any]] = field(default_factory=list)
    """Every `target_lost` record, as journaled."""
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per host: new-flow drops and table-full events over the whole observation."""

    class_hosts: dict[str, list[str]] = field(default_factory=dict)
    """Per class-entries scope (engine/classscope.py): the hosts it was counted on."""
    pools: dict[str, list[str]] = field(default_factory=dict)
    """The run's canary and control pools (host names), for pool expectations."""

    def pressure(self, hosts: set[str] | None = None) -> list[PressureSample]:
        """The worst pressure across observed hosts (or these) at each window, in time
        order."""
        samples = [PressureSample(m.t, m.ctr, m.nfd_per_s)
                   for h, ms in self.history.items() if hosts is None or h in hosts
                   for m in ms]
        return sorted(samples, key=lambda p: p.t)
