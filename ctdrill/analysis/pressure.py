"""What the analysis needs from a pressure timeline, whichever engine holds it: its name,
hosts, size and span for the report, each order's label, and the orders near an episode.

Two implementations answer the same questions with the same numbers: `InMemory` over a
`data.Timeline` (numpy, `labels`), and `columnar.ColumnarTimeline` (DuckDB SQL over the
files, for timelines too large for memory). The pipeline sees only this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ctdrill.analysis.data import OrderLog, Timeline
from ctdrill.analysis.labels import Labels, episode_windows, label_orders

Flags = NDArray[np.bool_]


class Pressure(Protocol):
    """A pressure timeline as the pipeline uses it."""

    @property
    def source(self) -> str: ...

    @property
    def hosts(self) -> tuple[str, ...]: ...

    def __len__(self) -> int: ...

    def span(self) -> tuple[float, float]: ...

    def label(self, orders: OrderLog, ctr_high: float, ctr_low: float) -> Labels:
        """The labels of `labels.label_orders` (same rule, same numbers)."""
        ...

    def episode_windows(self, orders: OrderLog, labels: Labels, ctr_high: float,
                        window_s: float) -> tuple[Flags, Flags]:
        """The flags of `labels.episode_windows`."""
        ...


@dataclass(frozen=True)
class InMemory:
    """A Timeline in memory, through the numpy functions of `labels`."""

    timeline: Timeline

    @property
    def source(self) -> str:
        return self.timeline.source

    @property
    def hosts(self) -> tuple[str, ...]:
        return self.timeline.hosts

    def __len__(self) -> int:
        return len(self.timeline)

    def span(self) -> tuple[float, float]:
        return self.timeline.span()

    def label(self, orders: OrderLog, ctr_high: float, ctr_low: float) -> Labels:
        return label_orders(orders, self.timeline, ctr_high, ctr_low)

    def episode_windows(self, orders: OrderLog, labels: Labels, ctr_high: float,
                        window_s: float) -> tuple[Flags, Flags]:
        return episode_windows(orders, self.timeline, labels, ctr_high, window_s)


def as_pressure(timeline: Timeline | Pressure) -> Pressure:
    """A Timeline wrapped, anything else as it is."""
    return InMemory(timeline) if isinstance(timeline, Timeline) else timeline
