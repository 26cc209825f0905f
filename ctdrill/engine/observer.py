"""Sample several targets at once: one stream and reader thread per target, one queue."""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass

from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.metrics.window import SlidingWindow
from ctdrill.targets.target import Target
from ctdrill.telemetry.protocol import Sample
from ctdrill.telemetry.streams import SampleStream, open_stream


@dataclass(frozen=True)
class Observation:
    host: str
    sample: Sample
    metrics: WindowMetrics | None


class Observer:
    def __init__(self, targets: list[Target], hz: float, window_s: float) -> None:
        self.targets = targets
        self.hz = hz
        self._windows = {t.name: SlidingWindow(window_s) for t in targets}
        self._queue: queue.Queue[tuple[str, Sample] | tuple[str, None]] = queue.Queue()
        self._streams: list[SampleStream] = []
        self._threads: list[threading.Thread] = []
        self.history: dict[str, list[WindowMetrics]] = {t.name: [] for t in targets}
        self.ended: set[str] = set()

    def start(self) -> None:
        try:
            for target in self.targets:
                stream = open_stream(target, self.hz)
                self._streams.append(stream)
                thread = threading.Thread(target=self._read, args=(target.name, stream),
                                          daemon=True, name=f"ctd-observe-{target.name}")
                self._threads.append(thread)
        except BaseException:
            self.close()
            raise
        for thread in self._threads:
            thread.start()

    def _read(self, host: str, stream: SampleStream) -> None:
        try:
            for sample in stream:
                self._queue.put((host, sample))
        except Exception:  # a dead stream is reported as ended, not raised
            pass
        self._queue.put((host, None))

    def poll(self, timeout: float = 0.1) -> list[Observation]:
        """Everything that arrived, waiting at most `timeout` for the first item."""
        out: list[Observation] = []
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return out
        while True:
            host, sample = item
            if sample is None:
                self.ended.add(host)
            else:
                m = self._windows[host].push(sample)
                if m is not None:
                    self.history[host].append(m)
                out.append(Observation(host, sample, m))
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return out

    def close(self) -> None:
        for stream in self._streams:
            with contextlib.suppress(Exception):  # closing is best effort
                stream.close()
        for thread in self._threads:
            thread.join(timeout=2)
