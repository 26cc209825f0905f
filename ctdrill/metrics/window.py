"""A sliding window over a sample stream, so rates are read over ~1 s, not one tick."""

from __future__ import annotations

from collections import deque

from ctdrill.metrics.conntrack import WindowMetrics, window_metrics
from ctdrill.telemetry.protocol import Sample


class SlidingWindow:
    """Keeps the last `seconds` of samples and computes metrics across them."""

    def __init__(self, seconds: float = 1.0) -> None:
        if seconds <= 0:
            raise ValueError("window must be positive")
        self.seconds = seconds
        self._samples: deque[Sample] = deque()

    def push(self, sample: Sample) -> WindowMetrics | None:
        """Add a sample; return metrics once two samples span some time."""
        self._samples.append(sample)
        while len(self._samples) > 2 and sample.t - self._samples[1].t >= self.seconds:
            self._samples.popleft()
        first = self._samples[0]
        if sample.t <= first.t:
            return None
        events = sum(len(s.events) for s in list(self._samples)[1:])
        return window_metrics(first, sample, events)
