"""Shapes as schedules: how many flows are due by time t (pure).

Every shape becomes a cumulative count N(t). The sender never needs the rate itself:
it sends whatever N(t) says is owed, one batch at a time (see pacer.py), so pacing
error does not accumulate and any shape (steps, ramps, bursts, replays) is paced the
same way. Rates are piecewise linear (a ramp is one linear segment), so N(t) is exact.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Segment:
    """A rate that moves linearly from rate0 at `start` to rate1 at `end` (seconds)."""

    start: float
    end: float
    rate0: float
    rate1: float

    @property
    def count(self) -> float:
        return (self.rate0 + self.rate1) / 2 * (self.end - self.start)

    def due_within(self, t: float) -> float:
        """Flows due from `start` to t (start <= t <= end)."""
        x = t - self.start
        span = self.end - self.start
        slope = (self.rate1 - self.rate0) / span if span > 0 else 0.0
        return self.rate0 * x + slope * x * x / 2

    def time_within(self, n: float) -> float:
        """Earliest t in the segment by which `n` flows (n <= count) are due."""
        span = self.end - self.start
        slope = (self.rate1 - self.rate0) / span if span > 0 else 0.0
        if abs(slope) < 1e-12:
            return self.start + (n / self.rate0 if self.rate0 > 0 else 0.0)
        # rate0*x + slope*x^2/2 = n, the root in [0, span]
        disc = max(self.rate0 * self.rate0 + 2 * slope * n, 0.0)
        x = (-self.rate0 + math.sqrt(disc)) / slope
        return self.start + min(max(x, 0.0), span)


class Schedule(Protocol):
    paced: bool
    duration: float

    def due(self, t: float) -> float:
        """Flows due from 0 to t."""

    def time_for(self, n: float) -> float:
        """Earliest t at which `n` flows are due; inf if never."""

    def total(self) -> float:
        """Flows due over the whole schedule (inf when unpaced)."""

    def rate_at(self, t: float) -> float:
        """Requested flows/s at t (inf when unpaced)."""

    def to_json(self) -> dict[str, Any]: ...


class RateSchedule:
    """Piecewise-linear rate over [0, duration]; unpaced when `paced` is False."""

    def __init__(self, segments: Sequence[Segment], *, paced: bool = True,
                 duration: float | None = None) -> None:
        self.segments = tuple(segments)
        self.paced = paced
        self.duration = duration if duration is not None else (
            self.segments[-1].end if self.segments else 0.0)
        self._starts = [s.start for s in self.segments]
        self._before: list[float] = []
        acc = 0.0
        for s in self.segments:
            self._before.append(acc)
            acc += s.count
        self._total = acc

    def due(self, t: float) -> float:
        if not self.paced:
            return math.inf if t > 0 else 0.0
        if t <= 0 or not self.segments:
            return 0.0
        if t >= self.duration:
            return self._total
        i = bisect.bisect_right(self._starts, t) - 1
        seg = self.segments[i]
        return self._before[i] + seg.due_within(min(t, seg.end))

    def time_for(self, n: float) -> float:
        if not self.paced:
            return 0.0
        if n <= 0:
            return 0.0
        if n > self._total + 1e-9:
            return math.inf
        i = bisect.bisect_left(self._before, n) - 1
        i = max(i, 0)
        while i + 1 < len(self.segments) and self._before[i] + self.segments[i].count < n:
            i += 1
        seg = self.segments[i]
        return seg.time_within(min(n - self._before[i], seg.count))

    def total(self) -> float:
        return self._total if self.paced else math.inf

    def rate_at(self, t: float) -> float:
        if not self.paced:
            return math.inf
        if t < 0 or t >= self.duration or not self.segments:
            return 0.0
        seg = self.segments[bisect.bisect_right(self._starts, t) - 1]
        span = seg.end - seg.start
        return seg.rate0 + (seg.rate1 - seg.rate0) * ((t - seg.start) / span if span else 0)

    def scaled(self, factor: float) -> RateSchedule:
        """The same shape at `factor` times the rate: one worker's share."""
        return RateSchedule([Segment(s.start, s.end, s.rate0 * factor, s.rate1 * factor)
                             for s in self.segments], paced=self.paced,
                            duration=self.duration)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "rate", "paced": self.paced, "duration": self.duration,
                "segments": [[s.start, s.end, s.rate0, s.rate1] for s in self.segments]}


class EventSchedule:
    """One flow due at each recorded time (pcap replay)."""

    paced = True

    def __init__(self, times: Sequence[float]) -> None:
        self.times = sorted(times)
        self.duration = (self.times[-1] if self.times else 0.0) + 1e-6

    def due(self, t: float) -> float:
        return float(bisect.bisect_right(self.times, t))

    def time_for(self, n: float) -> float:
        k = math.ceil(n)
        if k <= 0:
            return 0.0
        return self.times[k - 1] if k <= len(self.times) else math.inf

    def total(self) -> float:
        return float(len(self.times))

    def rate_at(self, t: float) -> float:
        return self.due(t + 0.5) - self.due(t - 0.5)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "events", "times": self.times}


def schedule_from_json(data: dict[str, Any]) -> Schedule:
    if data["kind"] == "events":
        return EventSchedule(data["times"])
    return RateSchedule([Segment(*s) for s in data["segments"]], paced=data["paced"],
                        duration=data["duration"])


def profile_segments(points: Sequence[tuple[float, float]], scale: float = 1.0) -> list[Segment]:
    """(t, rate) rows -> segments; each rate holds until the next row's t.

    Times are made relative to the first row. The last rate holds for the spacing of
    the last two rows (1 s when there is a single row), so a per-second profile of n
    rows lasts n seconds.
    """
    t0 = points[0][0]
    times = [t - t0 for t, _ in points]
    last = times[-1] - times[-2] if len(times) > 1 else 1.0
    ends = [*times[1:], times[-1] + last]
    return [Segment(a, b, r * scale, r * scale)
            for (a, b), (_, r) in zip(zip(times, ends, strict=True), points, strict=True)]


def shape_schedule(shape: Any, profile: Sequence[tuple[float, float]] | None = None) -> Schedule:
    """The schedule of a shape; a profile replay needs its parsed (t, rate) points.
    (The spec models are imported here, not at the top: the sender is shipped to remote
    hosts with the standard library only, see connect/payload.py.)"""
    from ctdrill.surge.spec import (
        BurstShape,
        ConstantShape,
        MaxShape,
        RampShape,
        ReplayShape,
        StepShape,
    )

    if isinstance(shape, ConstantShape):
        return RateSchedule([Segment(0, shape.duration_s, shape.rate, shape.rate)])
    if isinstance(shape, StepShape):
        segs, t = [], 0.0
        for step in shape.steps:
            segs.append(Segment(t, t + step.duration_s, step.rate, step.rate))
            t += step.duration_s
        return RateSchedule(segs)
    if isinstance(shape, RampShape):
        return RateSchedule([Segment(0, shape.duration_s, shape.from_rate, shape.to_rate)])
    if isinstance(shape, BurstShape):
        segs, t = [], 0.0
        for i in range(shape.count):
            segs.append(Segment(t, t + shape.on_s, shape.rate, shape.rate))
            t += shape.on_s
            if shape.off_s > 0 and i + 1 < shape.count:
                segs.append(Segment(t, t + shape.off_s, 0.0, 0.0))
                t += shape.off_s
        return RateSchedule(segs)
    if isinstance(shape, ReplayShape):
        if profile is None:
            raise ValueError("a profile replay needs its parsed points")
        return RateSchedule(profile_segments(profile, shape.scale))
    if isinstance(shape, MaxShape):
        return RateSchedule([], paced=False, duration=shape.duration_s)
    raise TypeError(f"unknown shape {type(shape).__name__}")


def fill_schedule(flows: int, rate: float | None, max_duration: float) -> RateSchedule:
    """A fill: `flows` at `rate`, or unpaced (bounded by its flow count)."""
    if rate is None:
        return RateSchedule([], paced=False, duration=max_duration)
    return RateSchedule([Segment(0, flows / rate, rate, rate)])
