"""The watch service: one supervised telemetry stream and regime machine per target, a
Prometheus endpoint, and a JSON-lines stream of transitions an execution router can
follow. A target that goes away is marked down and reconnected with backoff.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

from prometheus_client.exposition import choose_encoder

from ctdrill.errors import CtdrillError
from ctdrill.metrics.conntrack import WindowMetrics, counter_delta
from ctdrill.metrics.window import SlidingWindow
from ctdrill.regime.config import RegimeConfig
from ctdrill.regime.machine import RegimeInput, RegimeMachine
from ctdrill.targets.target import Target
from ctdrill.telemetry.protocol import Sample, SlabInfo
from ctdrill.telemetry.streams import SampleStream, open_stream
from ctdrill.watch.exposition import TargetView, registry_for, render


class TargetWatch:
    """Supervises one target's stream: reconnects, feeds the window and the machine."""

    def __init__(self, target: Target, hz: float, window_s: float, cfg: RegimeConfig,
                 emit: Callable[[dict[str, Any]], None], stop: threading.Event) -> None:
        self.target, self.hz, self.window_s = target, hz, window_s
        self.machine = RegimeMachine(cfg)
        self.emit, self.stop = emit, stop
        self.up = False
        self.metrics: WindowMetrics | None = None
        self.reconnects = 0
        self.new_flow_drops = 0
        self.table_full_events = 0
        self.slab: SlabInfo | None = None
        self.last_error = ""
        self.stream: SampleStream | None = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"ctd-watch-{target.name}")

    def view(self) -> TargetView:
        with self._lock:
            return TargetView(self.target.name, self.up, self.machine.regime, self.metrics,
                              len(self.machine.transitions), self.reconnects,
                              self.new_flow_drops, self.table_full_events, self.slab)

    def _run(self) -> None:
        backoff = 0.5
        while not self.stop.is_set():
            try:
                stream = open_stream(self.target, self.hz)
            except CtdrillError as exc:
                self._down(exc.one_line())
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            window = SlidingWindow(self.window_s)
            previous: Sample | None = None
            with self._lock:
                self.up = True
                self.stream = stream
            self.emit({"event": "target_up", "host": self.target.name, "t": time.time()})
            try:
                for sample in stream:
                    self._count(previous, sample)
                    previous = sample
                    m = window.push(sample)
                    if m is None:
                        continue
                    with self._lock:
                        self.metrics = m
                        tr = self.machine.feed(RegimeInput.from_window(m))
                    if tr is not None:
                        self.emit({"event": "transition", "host": self.target.name,
                                   **tr.to_json()})
            except Exception as exc:  # a broken stream is a down target, not a crash
                self.last_error = repr(exc)
            finally:
                with self._lock:
                    self.stream = None
                stream.close()
            if not self.stop.is_set():
                self._down(self.last_error or "telemetry stream ended")
                self.stop.wait(backoff)

    def _count(self, previous: Sample | None, sample: Sample) -> None:
        """Counters from consecutive samples of one stream (windows overlap, so summing
        their deltas would count each drop many times); a reconnect starts afresh. The
        slab cache is a level: the last sample's."""
        drops = 0 if previous is None else counter_delta(previous.stat, sample.stat, "drop")
        with self._lock:
            self.new_flow_drops += drops
            self.table_full_events += len(sample.events)
            self.slab = sample.slab

    def interrupt(self) -> None:
        """Unblock the reader (used at shutdown): closing the stream ends its iteration."""
        with self._lock:
            stream = self.stream
        if stream is not None:
            stream.close()

    def _down(self, why: str) -> None:
        with self._lock:
            was_up = self.up
            self.up = False
            self.reconnects += 1 if was_up else 0
        if was_up:
            self.emit({"event": "target_down", "host": self.target.name, "t": time.time(),
                       "why": why})


class WatchService:
    def __init__(self, targets: list[Target], *, hz: float, window_s: float,
                 cfg: RegimeConfig, out: IO[str]) -> None:
        self.stop = threading.Event()
        self._out = out
        self._out_lock = threading.Lock()
        self.watches = {t.name: TargetWatch(t, hz, window_s, cfg, self.emit, self.stop)
                        for t in targets}
        self._server: ThreadingHTTPServer | None = None
        self.registry = registry_for(self.views)

    def emit(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, default=str) + "\n"
        with self._out_lock:
            self._out.write(line)
            self._out.flush()

    def views(self) -> dict[str, TargetView]:
        return {h: w.view() for h, w in self.watches.items()}

    def metrics_text(self) -> str:
        return render(self.views())

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics endpoint; returns the bound port (0 picks a free one)."""
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404, "only /metrics here")
                    return
                # prometheus_client picks the format the scraper asks for (text or
                # OpenMetrics) and encodes the registry's collector
                encode, content_type = choose_encoder(self.headers.get("Accept", ""))
                body = encode(service.registry)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="ctd-watch-http").start()
        return int(self._server.server_address[1])

    def start(self) -> None:
        for w in self.watches.values():
            w.thread.start()

    def close(self) -> None:
        self.stop.set()
        for w in self.watches.values():
            w.interrupt()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for w in self.watches.values():
            if w.thread.ident is not None:  # started (a service may close before start)
                w.thread.join(timeout=5)
