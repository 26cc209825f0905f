"""The venue's handshake partner: answers a split ASSURED surge's SYNs at rate.

Runs on the venue host (shipped, connect/payload.py; standard library only), one
process. It sees the surge's SYNs on a filtered packet socket (capture.py), learns
from each how far every client worker has got (handshake.py) and sends the SYN-ACKs
of all flows up to there from prebuilt frames (the same rows the client generates,
frames.py), so the reply costs what a send costs, not per-packet Python. Its own nft
table keeps the venue's kernel from answering the SYNs with RSTs.

Protocol (stdin/stdout JSON lines, like worker.py): config; `ready`; `go`; then
`next` moves every part to the next phase (the controller's barrier); `stop` or the
end of stdin ends it. Out: `progress` every ~0.1 s, `done` with the counts.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ctdrill.surge import hostsilence, sendguard
from ctdrill.surge.capture import Capture
from ctdrill.surge.flowspace import FlowSpace
from ctdrill.surge.frames import Template
from ctdrill.surge.handshake import count_ahead, syn_matches
from ctdrill.surge.sendmmsg import SendCounters, packet_socket, send_frames
from ctdrill.surge.worker import RowSource, emit

WAIT_S = 0.05


@dataclass
class Part:
    """One client worker's flows in one phase: how many are answered, their frames."""

    space: FlowSpace
    source: RowSource
    answered: int = 0
    base: int = 0
    filled: int = 0
    capture: Capture | None = None
    """A filter for exactly this part's SYNs: the last frame queued says how far."""

    def send_upto(self, target: int, fd: int, counters: SendCounters,
                  stopping: Any) -> int:
        """SYN-ACKs for flows [answered, target), refilling frames as the rows go by."""
        sent = 0
        while self.answered < target and not stopping():
            if self.answered - self.base >= self.filled:
                self.base, self.filled = self.answered, self.source.refill()
                if self.filled == 0:
                    break
            k = min(target, self.base + self.filled) - self.answered
            k = send_frames(fd, self.source.rings[0], self.answered - self.base, k, counters,
                            stopping)
            self.answered += k
            sent += k
        return sent


@dataclass
class Control:
    """The controller's lines, read by a thread: phase moves and the stop."""

    phase: int = 0
    stop: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self) -> None:
        for line in sys.stdin:
            with self.lock:
                if line.startswith("next"):
                    self.phase += 1
                elif line.startswith("stop"):
                    self.stop = self.stop or "stopped"
        self.stop = self.stop or "controller gone"


def build_parts(phase: dict[str, Any], ifname: str, peer: int, networks: list[str]
                ) -> list[Part]:
    parts = []
    for p in phase["parts"]:
        space = FlowSpace.from_json(p["space"])
        template = Template.from_json(p["template"])
        sendguard.check([template], space, networks)
        parts.append(Part(space, RowSource([template], space),
                          capture=Capture(ifname, syn_matches(space, peer))))
    return parts


class Responder:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        peer = int(config["peer"])
        self.phases = [build_parts(ph, config["ifname"], peer, config["networks"])
                       for ph in config["phases"]]
        self.control = Control()
        self.counters = SendCounters()
        self.syns = 0
        self.answered = 0
        self.parent = os.getppid()
        self.sock = packet_socket(config["ifname"])
        self.last_report = 0.0
        self.window = int(config["window"])
        self.budget = int(config["max_packets"])
        self.deadline = time.monotonic() + float(config["max_duration_s"])
        self.signalled = ""

    def stopping(self) -> bool:
        if self.counters.packets >= self.budget or time.monotonic() >= self.deadline:
            self.control.stop = self.control.stop or "limit"
        return (bool(self.control.stop) or bool(self.signalled)
                or os.getppid() != self.parent)

    def parts(self) -> list[Part]:
        i = self.control.phase
        return self.phases[i] if i < len(self.phases) else []

    def step(self) -> None:
        """Answer every part up to the last SYN its capture holds now."""
        fd = self.sock.fileno()
        for part in self.parts():
            assert part.capture is not None
            seen = part.capture.seen
            last = part.capture.last()
            self.syns += part.capture.seen - seen
            if last is None:
                continue
            src, _dst, sport, dport = last
            index = part.space.index(src, sport, dport)
            if index is not None:
                target = min(count_ahead(part.answered, index, part.space.size, self.window),
                             part.answered + self.budget - self.counters.packets)
                self.answered += part.send_upto(target, fd, self.counters, self.stopping)

    def run(self) -> str:
        import select

        while not self.stopping():
            captures = [p.capture for p in self.parts() if p.capture is not None]
            select.select(captures, [], [], WAIT_S)
            self.step()
            now = time.monotonic()
            if now - self.last_report >= 0.1:
                self.last_report = now
                emit({"type": "progress", **self.totals()})
        return self.signalled or self.control.stop or "orphaned"

    def totals(self) -> dict[str, Any]:
        return {"syns": self.syns, "synacks": self.answered, "phase": self.control.phase,
                "packets": self.counters.packets, "enobufs": self.counters.enobufs}


def _serve(responder: Responder) -> dict[str, Any]:
    emit({"type": "ready"})
    if not sys.stdin.readline().startswith("go"):
        return {"type": "done", "stopped": "not started", **responder.totals()}
    threading.Thread(target=responder.control.read, daemon=True, name="ctd-ctl").start()
    try:
        stopped = responder.run()
        error = ""
    except Exception as exc:  # reported in `done`, one line, never a traceback
        stopped, error = "error", f"{type(exc).__name__}: {exc}"
    return {"type": "done", "stopped": stopped, "error": error, **responder.totals()}


def main() -> int:
    config = json.loads(sys.stdin.readline())
    caught: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:  # a flag: never cut the removal
        caught.append(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
    silence = config.get("silence")
    installed = False
    try:
        try:
            responder = Responder(config)
            if silence:
                hostsilence.install(silence["table"], silence["ifname"], silence["matches"])
                installed = True
        except (OSError, ValueError, KeyError, hostsilence.SilenceError) as exc:
            emit({"type": "failed", "error": str(exc)})
            return 1
        responder.signalled = caught[0] if caught else ""
        signal.signal(signal.SIGTERM, lambda n, f: setattr(responder, "signalled", "SIGTERM"))
        signal.signal(signal.SIGHUP, lambda n, f: setattr(responder, "signalled", "SIGHUP"))
        emit(_serve(responder))
    finally:
        if installed:
            hostsilence.remove(silence["table"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
