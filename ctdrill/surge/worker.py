"""One sender process: `python -m ctdrill.surge.worker`, configured by one JSON line.

Protocol (stdin/stdout, one JSON object per line):
  in:  the config, then `go` once every worker is ready (a common start)
  out: {"type": "ready"}, {"type": "progress", ...} every ~0.1 s,
       {"type": "phase_end"} between phases (then wait for `next`: a barrier),
       {"type": "done", ...} with truthful final counts, also after SIGINT/SIGTERM.

A worker is pinned to one CPU: veth delivery runs in the sender's softirq on that
CPU, FIFO, which is what orders an ASSURED handshake's SYN, SYN-ACK and ACK through
the gateway without waiting for anything. The first SIGINT/SIGTERM stops sending
(the current sendmmsg call finishes) and still resets ASSURED flows (teardown); a
second one skips the teardown. Workers run in their own session, so a terminal's
Ctrl-C reaches only the controller, which relays it once; a worker whose controller
died stops by itself (its parent pid changes).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ctdrill.surge import hostsilence, sendguard
from ctdrill.surge.flowspace import FlowSpace
from ctdrill.surge.frames import RowWriter, Template, frame_for
from ctdrill.surge.handshake import Replies
from ctdrill.surge.pacer import BatchPacer
from ctdrill.surge.pcap import FLOW_RECORD, PROTO_CODES
from ctdrill.surge.sendmmsg import (
    FrameRing,
    SendCounters,
    SendFailed,
    packet_socket,
    send_frames,
)
from ctdrill.surge.shapes import EventSchedule, Schedule, schedule_from_json

FILL_FRAMES = 16384
"""Frames generated per refill: big enough that refills are rare, small enough for cache."""
PROTOCOLS = {code: stage for stage, code in PROTO_CODES.items()}
ASSURED_CHUNK = 256
"""Handshakes per round (SYNs, then SYN-ACKs, then ACKs): 3 x 256 frames stay below the
per-CPU backlog (netdev_max_backlog, 1000) even if softirq processing is deferred."""
REPLY_WAIT_S = 0.002
"""How long a split sender blocks for SYN-ACKs when its window is full."""


@dataclass
class PhaseStats:
    name: str
    flows: int = 0
    completed: int = 0
    packets: int = 0
    requested: float = 0.0
    forgiven: int = 0
    unanswered: int = 0
    wrapped: bool = False
    distinct: int = 0
    started: float = 0.0
    ended: float = 0.0
    teardown: int = 0


@dataclass
class State:
    signals: int = 0
    signal_name: str = ""
    counters: SendCounters = field(default_factory=SendCounters)
    phases: list[PhaseStats] = field(default_factory=list)
    last_report: float = 0.0
    stopped: str = "completed"
    error: str = ""

    def stopping(self) -> bool:
        return self.signals > 0

    def aborting(self) -> bool:
        return self.signals > 1

    def totals(self) -> dict[str, Any]:
        return {"flows": sum(p.flows for p in self.phases),
                "completed": sum(p.completed for p in self.phases),
                "packets": self.counters.packets, "errors": self.counters.errors,
                "enobufs": self.counters.enobufs,
                "phase": self.phases[-1].name if self.phases else ""}


def emit(obj: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):  # the controller is gone: the ppid check stops us
        pass


class RowSource:
    """Frames for every stage of a phase, row by row through the flow space."""

    def __init__(self, templates: list[Template], space: FlowSpace) -> None:
        self.space = space
        self.writers = [RowWriter(t, space) for t in templates]
        row_len = space.row_len
        self.rows_per_fill = max(1, min(space.rows, FILL_FRAMES // row_len))
        capacity = self.rows_per_fill * row_len
        self.rings = [FrameRing(len(t.frame), capacity) for t in templates]
        self.row = 0

    def refill(self) -> int:
        n = 0
        for _ in range(self.rows_per_fill):
            r = self.row % self.space.rows
            for writer, ring in zip(self.writers, self.rings, strict=True):
                writer.write(ring.buf, n, r)
            n += self.space.row_len
            self.row += 1
        return n


class ExplicitSource:
    """Prebuilt frames of recorded flows (pcap replay); each flow is sent once."""

    def __init__(self, templates: dict[str, Template],
                 flows: list[tuple[str, int, int, int]]) -> None:
        frames = [frame_for(templates[proto], a, p, d) for proto, a, p, d in flows]
        size = max((len(f) for f in frames), default=64)
        ring = FrameRing(size, max(1, len(frames)))
        for i, f in enumerate(frames):
            ring.buf[i * size:i * size + len(f)] = f
            ring.set_length(i, len(f))
        self.rings = [ring]
        self.count = len(frames)
        self._given = False

    def refill(self) -> int:
        if self._given:
            return 0
        self._given = True
        return self.count


def read_explicit(path: str, worker: int, workers: int
                  ) -> tuple[list[float], list[tuple[str, int, int, int]]]:
    """This worker's share (every workers-th flow) of the recorded flows."""
    data = Path(path).read_bytes()
    times, flows = [], []
    for i, (t, a, p, d, proto) in enumerate(FLOW_RECORD.iter_unpack(data)):
        if i % workers == worker:
            times.append(t)
            flows.append((PROTOCOLS[proto], a, p, d))
    return times, flows


@dataclass
class Phase:
    """A phase ready to send: frames generated, sockets chosen, schedule parsed."""

    name: str
    fds: list[int]
    source: RowSource | ExplicitSource
    schedule: Schedule
    limit: int | None
    space: FlowSpace | None
    teardown: RowSource | None = None
    teardown_fd: int = -1
    window: int = 0
    """Split ASSURED (the venue on another host): flows sent but not yet answered."""
    reply_timeout: float = 1.0


class Worker:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.state = State()
        self.sockets: dict[str, Any] = {}
        self.replies: Replies | None = None
        self.phases: list[Phase] = []
        self.deadline = 0.0
        # not PR_SET_PDEATHSIG: it fires when the spawning *thread* ends, and the engine
        # starts surges from a short-lived thread
        self.parent = os.getppid()

    def open_sockets(self) -> None:
        """Create each socket inside its namespace; a socket keeps the netns it was made in."""
        for name, where in self.config["sockets"].items():
            if where.get("netns"):
                from ctdrill.connect.netns import enter_netns  # not shipped: local runs only

                enter_netns(where["netns"])
            self.sockets[name] = packet_socket(where["ifname"])
        rep = self.config.get("replies")
        if rep:
            self.replies = Replies(rep["ifname"], int(rep["peer"]))

    def prepare(self) -> None:
        """Build every frame source before `ready`, so the common start is sharp."""
        for ph in self.config["phases"]:
            fds = [self.sockets[s["socket"]].fileno() for s in ph["stages"]]
            space = None
            source: RowSource | ExplicitSource
            if ph.get("explicit"):
                times, flows = read_explicit(ph["explicit"], self.config["worker"],
                                             self.config["workers"])
                templates = {k: Template.from_json(v) for k, v in ph["protocols"].items()}
                source = ExplicitSource(templates, flows)
                schedule: Schedule = EventSchedule(times)
            else:
                space = FlowSpace.from_json(ph["space"])
                stage_templates = [Template.from_json(s["template"]) for s in ph["stages"]]
                if "networks" in self.config:  # a shipped sender checks on its host
                    rst = ph.get("teardown", {}).get("template")
                    sendguard.check(stage_templates + ([Template.from_json(rst)] if rst else []),
                                    space, self.config["networks"])
                source = RowSource(stage_templates, space)
                schedule = schedule_from_json(ph["schedule"])
            phase = Phase(ph["name"], fds, source, schedule, ph.get("limit"), space)
            if ph.get("split"):
                phase.window = max(1, min(int(ph["split"]["window"]), space.size - 1
                                          if space is not None else 1))
                phase.reply_timeout = float(ph["split"]["timeout_s"])
            if ph.get("teardown") and space is not None:
                phase.teardown = RowSource([Template.from_json(ph["teardown"]["template"])],
                                           space)
                phase.teardown_fd = self.sockets[ph["teardown"]["socket"]].fileno()
            self.phases.append(phase)

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.state.last_report >= self.config.get("progress_s", 0.1):
            self.state.last_report = now
            if os.getppid() != self.parent:  # the controller is gone: stop, do not linger
                self.state.signals = max(self.state.signals, 1)
                self.state.signal_name = self.state.signal_name or "orphaned"
                return
            emit({"type": "progress", "t": now, **self.state.totals()})

    def run_phase(self, ph: Phase, budget: int) -> None:
        st = self.state
        stats = PhaseStats(ph.name)
        st.phases.append(stats)
        limit = budget // len(ph.fds)
        capped_by_budget = ph.limit is None or limit < ph.limit
        if ph.limit is not None:
            limit = min(limit, ph.limit)
        pacer = BatchPacer(ph.schedule, limit=limit)
        stats.started = time.monotonic()
        try:
            if ph.window:
                self._split_loop(ph, stats, pacer, limit, capped_by_budget)
            else:
                self._send_loop(ph, stats, pacer, limit, capped_by_budget)
        finally:
            stats.ended = time.monotonic()
            stats.requested = (min(ph.schedule.due(stats.ended - stats.started), float(limit))
                               if ph.schedule.paced else 0.0)  # unpaced: nothing was due
            stats.forgiven = pacer.forgiven
            if ph.space is not None:
                stats.wrapped = stats.flows > ph.space.size
                stats.distinct = min(stats.flows, ph.space.size)
            else:
                stats.distinct = stats.flows

    def _due(self, pacer: BatchPacer, stats: PhaseStats, limit: int, capped: bool
             ) -> tuple[int, float] | None:
        """(flows to send now, wait if none) or None when the phase is over."""
        st = self.state
        now = time.monotonic()
        if now >= self.deadline:
            st.stopped = "max_duration"
            return None
        g = pacer.grant(now - stats.started, stats.flows)
        if g.done:
            if stats.flows >= limit and capped:
                st.stopped = "max_packets"
            return None
        return g.n, g.wait

    def _send_loop(self, ph: Phase, stats: PhaseStats, pacer: BatchPacer, limit: int,
                   capped: bool) -> None:
        """Every stage from this process: SYN, SYN-ACK, ACK chunk by chunk (or one stage)."""
        st = self.state
        pos = filled = 0
        while not st.stopping():
            due = self._due(pacer, stats, limit, capped)
            if due is None:
                break
            if due[0] == 0:
                time.sleep(due[1])
                self.report()
                continue
            if pos >= filled:
                filled = ph.source.refill()
                pos = 0
                if filled == 0:
                    break
            k = min(due[0], filled - pos, ASSURED_CHUNK if len(ph.fds) > 1 else due[0])
            first = -1
            for fd, ring in zip(ph.fds, ph.source.rings, strict=True):
                k = send_frames(fd, ring, pos, k, st.counters, st.stopping)
                first = k if first < 0 else first
                stats.packets += k
            stats.flows += first
            stats.completed += k
            pos += first
            self.report()

    def _split_loop(self, ph: Phase, stats: PhaseStats, pacer: BatchPacer, limit: int,
                    capped: bool) -> None:
        """SYNs and ACKs from here, SYN-ACKs from the venue's partner on its host: a SYN
        goes out at the pace, its ACK once the SYN-ACK was seen (or is skipped after
        reply_timeout: its SYN was dropped on the way). At most `window` unanswered."""
        st, replies = self.state, self.replies
        assert replies is not None and ph.space is not None
        replies.start(ph.space)
        split = _Split(ph, stats, st.counters, st.stopping)
        while not st.stopping():
            split.acknowledge(replies.advance(split.sent))
            if split.full():
                replies.wait(REPLY_WAIT_S)
                continue
            due = self._due(pacer, stats, limit, capped)
            if due is None:
                break
            if due[0] == 0:
                replies.wait(min(due[1], REPLY_WAIT_S * 5))
                self.report()
                continue
            if not split.send_syns(due[0]):
                break
            self.report()
        end = time.monotonic() + ph.reply_timeout
        while split.outstanding() and time.monotonic() < end and not st.aborting():
            split.acknowledge(replies.advance(split.sent))
            replies.wait(REPLY_WAIT_S)
        split.give_up()

    def barrier(self, name: str) -> bool:
        """Wait until every worker ended this phase: a fill must be complete everywhere
        before any worker's surge flows arrive, or they would take the fill's places."""
        emit({"type": "phase_end", "phase": name, **self.state.totals()})
        line = sys.stdin.readline()
        if not line.startswith("next"):
            self.state.signals = max(self.state.signals, 1)
            self.state.signal_name = self.state.signal_name or "stopped"
            return False
        return not self.state.stopping()

    def teardown(self, ph: Phase, stats: PhaseStats) -> None:
        """RST every flow this phase started: ASSURED entries would hold the table for
        days (tcp_timeout_established); a RST moves them to CLOSE (10 s)."""
        assert ph.teardown is not None and ph.space is not None
        total = min(stats.flows, ph.space.size)
        sent = 0
        end = time.monotonic() + 10.0
        while sent < total and not self.state.aborting() and time.monotonic() < end:
            n = min(ph.teardown.refill(), total - sent)
            sent += send_frames(ph.teardown_fd, ph.teardown.rings[0], 0, n,
                                self.state.counters, self.state.aborting)
            self.report()
        stats.teardown = sent

    def run(self) -> dict[str, Any]:
        budget = int(self.config["max_packets"])
        self.deadline = time.monotonic() + float(self.config["max_duration_s"])
        try:
            for i, ph in enumerate(self.phases):
                if self.state.stopping():
                    break
                self.run_phase(ph, budget - self.state.counters.packets)
                if self.state.stopped != "completed":
                    break
                if i + 1 < len(self.phases) and not self.barrier(ph.name):
                    break
        except Exception as exc:  # whatever failed, the teardown below still runs
            self.state.stopped = "error"
            self.state.error = str(exc) if isinstance(exc, SendFailed) else \
                f"{type(exc).__name__}: {exc}"
        for ph, stats in zip(self.phases, self.state.phases, strict=False):
            if ph.teardown is not None and stats.completed:
                try:
                    self.teardown(ph, stats)
                except Exception as exc:
                    self.state.error = self.state.error or f"teardown: {exc}"
        if self.state.stopping():
            self.state.stopped = self.state.signal_name
        return self.result()

    def result(self) -> dict[str, Any]:
        return {"type": "done", "worker": self.config["worker"], "stopped": self.state.stopped,
                "error": self.state.error, **self.state.totals(),
                "last_error": self.state.counters.last_error,
                "phases": [asdict(p) for p in self.state.phases]}


class _Split:
    """The split sender's bookkeeping over one fill of frames: flows sent (SYN) and
    acknowledged (ACK sent, or given up) so far; a refill waits for every answer."""

    def __init__(self, ph: Phase, stats: PhaseStats, counters: SendCounters,
                 stopping: Any) -> None:
        self.ph, self.stats, self.counters, self.stopping = ph, stats, counters, stopping
        self.sent = self.acked = self.base = self.filled = 0
        self.chunks: list[tuple[int, float]] = []  # (sent count after a chunk, when)

    def outstanding(self) -> int:
        return self.sent - self.acked

    def full(self) -> bool:
        self._expire()
        at_end = self.sent - self.base >= self.filled and self.filled > 0
        return self.outstanding() >= self.ph.window or (at_end and self.outstanding() > 0)

    def send_syns(self, n: int) -> bool:
        if self.sent - self.base >= self.filled:
            self.base, self.filled = self.sent, self.ph.source.refill()
            if self.filled == 0:
                return False
        k = min(n, self.base + self.filled - self.sent, ASSURED_CHUNK,
                self.ph.window - self.outstanding())
        k = send_frames(self.ph.fds[0], self.ph.source.rings[0], self.sent - self.base, k,
                        self.counters, self.stopping)
        self.sent += k
        self.stats.flows += k
        self.stats.packets += k
        self.chunks.append((self.sent, time.monotonic()))
        return True

    def acknowledge(self, answered: int) -> None:
        """ACK every flow up to `answered` (its SYN-ACK has crossed the gateway)."""
        upto = min(answered, self.sent)
        if upto > self.acked:
            k = send_frames(self.ph.fds[1], self.ph.source.rings[1], self.acked - self.base,
                            upto - self.acked, self.counters, self.stopping)
            self.stats.packets += k
            self.stats.completed += k
            self.acked += k

    def _expire(self) -> None:
        """Flows unanswered past reply_timeout are given up (no ACK: no SYN-ACK crossed)."""
        now = time.monotonic()
        while self.chunks and (self.chunks[0][0] <= self.acked
                               or now - self.chunks[0][1] > self.ph.reply_timeout):
            end, _t = self.chunks.pop(0)
            if end > self.acked:
                self.stats.unanswered += end - self.acked
                self.acked = end

    def give_up(self) -> None:
        self.stats.unanswered += self.outstanding()
        self.acked = self.sent
        self.chunks.clear()


def _install_signals(state: State) -> None:
    def handler(signum: int, _frame: object) -> None:
        state.signals += 1
        if not state.signal_name:
            state.signal_name = signal.Signals(signum).name

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # HUP: an ssh link dropped
        signal.signal(sig, handler)


def main() -> int:
    config = json.loads(sys.stdin.readline())
    worker = Worker(config)
    _install_signals(worker.state)
    silence = config.get("silence")
    try:
        if config.get("cpu") is not None:
            os.sched_setaffinity(0, {int(config["cpu"])})
        worker.open_sockets()
        worker.prepare()
        if silence:
            hostsilence.install(silence["table"], silence["ifname"], silence["matches"])
    except (OSError, ValueError, KeyError, hostsilence.SilenceError) as exc:
        emit({"type": "failed", "error": str(exc)})
        return 1
    try:
        return _run(worker)
    finally:
        if silence:
            hostsilence.remove(silence["table"])


def _run(worker: Worker) -> int:
    emit({"type": "ready"})
    line = sys.stdin.readline()
    if not line.startswith("go") or worker.state.stopping():
        worker.state.stopped = "not started"
        emit(worker.result())
        return 0
    result = worker.run()
    worker.report(force=True)
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
