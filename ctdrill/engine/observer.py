"""Sample several targets at once: one stream and reader thread per target, one queue.

A stream can go quiet without ending (an SSH link cut leaves the channel open), so the
observer watches arrivals itself: a target with no sample for `stall_after_s(hz)` is
reported lost ("stalled") at once, and reported again as resumed if samples come back.
Arrival times are taken by the reader threads, so a main loop busy elsewhere (a step's
apply) never makes a live target look stalled.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ctdrill.engine.coverage import stall_after_s
from ctdrill.metrics.conntrack import WindowMetrics, counter_delta
from ctdrill.metrics.window import SlidingWindow
from ctdrill.system.parallel import run_all
from ctdrill.targets.target import Target
from ctdrill.telemetry.protocol import Sample
from ctdrill.telemetry.streams import SampleStream, open_stream

Clock = Callable[[], float]
Opener = Callable[[Target, float], SampleStream]
LostWhy = Literal["stalled", "ended"]


@dataclass(frozen=True)
class Observation:
    host: str
    sample: Sample
    metrics: WindowMetrics | None


@dataclass(frozen=True)
class TargetLost:
    """A target whose telemetry stopped: its stream ended, or nothing came for too long."""

    host: str
    why: LostWhy
    last_sample_t: float | None
    """The target's clock at its last sample; None if none ever came."""
    silent_s: float
    """How long nothing had arrived when it was declared lost."""

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "why": self.why, "last_sample_t": self.last_sample_t,
                "silent_s": round(self.silent_s, 3)}


@dataclass(frozen=True)
class TargetResumed:
    """A stalled target whose samples came back."""

    host: str
    silent_s: float


Change = TargetLost | TargetResumed


class Observer:
    def __init__(self, targets: list[Target], hz: float, window_s: float, *,
                 clock: Clock = time.monotonic, opener: Opener = open_stream) -> None:
        self.targets = targets
        self.hz = hz
        self.stall_s = stall_after_s(hz)
        self._clock = clock
        self._opener = opener
        self._windows = {t.name: SlidingWindow(window_s) for t in targets}
        self._queue: queue.Queue[tuple[str, Sample] | tuple[str, None]] = queue.Queue()
        self._streams: list[SampleStream] = []
        self._threads: list[threading.Thread] = []
        self._arrived: dict[str, float] = {}  # written by reader threads: clock() per sample
        self._last_t: dict[str, float] = {}
        self._changes: list[Change] = []
        self.history: dict[str, list[WindowMetrics]] = {t.name: [] for t in targets}
        self.totals: dict[str, dict[str, int]] = {
            t.name: {"drops": 0, "table_full_events": 0} for t in targets}
        """Counts over the whole observation, from consecutive samples (windows overlap:
        summing their counts would count each drop once per window it falls in)."""
        self._previous: dict[str, Sample] = {}
        self.arrivals: dict[str, list[float]] = {t.name: [] for t in targets}
        """Orchestrator wall-clock arrival (Sample.received) of every sample, per host."""
        self.ended: set[str] = set()
        self.lost: dict[str, TargetLost] = {}

    def start(self) -> None:
        """Open every target's stream side by side (a pool's N connections cost one
        round trip, not N), then start one reader per stream."""
        opened: dict[str, SampleStream] = {}

        def open_one(target: Target) -> None:
            opened[target.name] = self._opener(target, self.hz)

        try:
            run_all([functools.partial(open_one, t) for t in self.targets])
        except BaseException:
            self._streams = list(opened.values())
            self.close()
            raise
        for target in self.targets:
            stream = opened[target.name]
            self._streams.append(stream)
            self._threads.append(threading.Thread(
                target=self._read, args=(target.name, stream), daemon=True,
                name=f"ctd-observe-{target.name}"))
        now = self._clock()
        for target in self.targets:
            self._arrived[target.name] = now  # the first sample is due one period from now
        for thread in self._threads:
            thread.start()

    def _read(self, host: str, stream: SampleStream) -> None:
        try:
            for sample in stream:
                self._arrived[host] = self._clock()
                self._queue.put((host, sample))
        except Exception:  # a dead stream is reported as ended, not raised
            pass
        self._queue.put((host, None))

    def poll(self, timeout: float = 0.1) -> list[Observation]:
        """Everything that arrived, waiting at most `timeout` for the first item; then
        every target silent for longer than `stall_s` is marked lost (see `changes`)."""
        out: list[Observation] = []
        try:
            item: tuple[str, Sample | None] | None = self._queue.get(timeout=timeout)
        except queue.Empty:
            item = None
        while item is not None:
            host, sample = item
            if sample is None:
                self._ended(host)
            else:
                out.append(self._take(host, sample))
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                item = None
        self._check_stalls()
        return out

    def _take(self, host: str, sample: Sample) -> Observation:
        lost = self.lost.get(host)
        if lost is not None and lost.why == "stalled":
            del self.lost[host]
            self._changes.append(TargetResumed(host, lost.silent_s))
        self._last_t[host] = sample.t
        self.arrivals[host].append(sample.received)
        self._count(host, sample)
        m = self._windows[host].push(sample)
        if m is not None:
            self.history[host].append(m)
        return Observation(host, sample, m)

    def _count(self, host: str, sample: Sample) -> None:
        before = self._previous.get(host)
        if before is not None:
            self.totals[host]["drops"] += counter_delta(before.stat, sample.stat, "drop")
        self.totals[host]["table_full_events"] += len(sample.events)
        self._previous[host] = sample

    def _ended(self, host: str) -> None:
        self.ended.add(host)
        silent = self._clock() - self._arrived.get(host, self._clock())
        self._lose(TargetLost(host, "ended", self._last_t.get(host), max(0.0, silent)))

    def _check_stalls(self) -> None:
        now = self._clock()
        for host, at in list(self._arrived.items()):
            if host not in self.lost and now - at > self.stall_s:
                self._lose(TargetLost(host, "stalled", self._last_t.get(host), now - at))

    def _lose(self, lost: TargetLost) -> None:
        self.lost[lost.host] = lost
        self._changes.append(lost)

    def changes(self) -> list[Change]:
        """Targets lost or resumed since the last call, in the order it happened."""
        out, self._changes = self._changes, []
        return out

    def close(self) -> None:
        """Stop every stream side by side (each stop waits for its agent to exit: a
        round trip per host, N of them one after another on a pool), then the readers."""
        def stop(stream: SampleStream) -> None:
            with contextlib.suppress(Exception):  # closing is best effort
                stream.close()

        run_all([functools.partial(stop, s) for s in self._streams])
        for thread in self._threads:
            if thread.ident is not None:  # started
                thread.join(timeout=2)
