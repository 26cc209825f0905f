"""The split surge: senders on the source host, the handshake partner on the venue host.

Used whenever the two ends are not lab namespaces of this machine (real hosts over
SSH, an opaque lab). Each end is reached only through its connector; the senders
(worker.py) and the partner (responder.py) are shipped as payloads (connect/payload.py)
with their frames' recipe: scapy templates built here, flow spaces cut per worker as
in the local surge (build.py). ASSURED flows are real three-way handshakes across the
gateway: SYN and ACK from the client, SYN-ACK from the venue (handshake.py says how
the two ends stay in step). Each end holds its own silence table (hostsilence.py), so
nothing stays on a host if the orchestrator or the link dies.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ctdrill import PREFIX
from ctdrill.connect import Connector, connector_for
from ctdrill.connect.payload import spawn_module
from ctdrill.errors import EnvironmentProblem
from ctdrill.surge.build import NEW_STAGE, _templates, _usable_workers
from ctdrill.surge.flowspace import FlowSpace
from ctdrill.surge.netinfo import link_via
from ctdrill.surge.plan import SurgePlan
from ctdrill.surge.runner import READY_TIMEOUT_S, STOP_TIMEOUT_S, SurgeRun, WorkerProc
from ctdrill.surge.shapes import RateSchedule, Schedule, fill_schedule, shape_schedule
from ctdrill.surge.templates import Link, build_template

SPLIT_STAGES = (("client", "syn"), ("client", "ack"))
WINDOW = 4096
"""Flows a sender may have waiting for their SYN-ACK (well under one fill of frames)."""
REPLY_TIMEOUT_S = 1.0
MAX_WORKERS = 16
"""Senders per source host at most. Each has its own SSH connection (sshd's MaxSessions,
10 by default, limits the channels of one), plus a channel for its stop."""
CPUS = "import os; print(' '.join(map(str, sorted(os.sched_getaffinity(0)))))"


@dataclass
class SplitBuilt:
    workers: list[dict[str, Any]]
    partner: dict[str, Any] | None
    summary: dict[str, Any]


def remote_cpus(conn: Connector) -> list[int]:
    """The CPUs the host lets us use (the last output line: login shells may print)."""
    lines = conn.run([conn.python, "-c", CPUS], timeout=30).stdout.strip().splitlines()
    try:
        return [int(c) for c in lines[-1].split()] or [0]
    except (IndexError, ValueError):
        raise EnvironmentProblem(f"cannot read the CPUs of {conn.where}",
                                 f"'{conn.python} -c' printed {lines[-1:]!r}") from None


def _phase(name: str, plan: SurgePlan, link: Link, space: FlowSpace, schedule: Schedule,
           assured: bool, limit: int | None, workers: int) -> list[dict[str, Any]]:
    """One phase's config per sender (split.py's stages: no SYN-ACK from here)."""
    out = []
    for w, part in enumerate(space.split(workers)):
        sched = schedule.scaled(1.0 / workers) if isinstance(schedule, RateSchedule) \
            else schedule
        stages = SPLIT_STAGES if assured else (("client", NEW_STAGE[plan.spec.protocol]),)
        ph: dict[str, Any] = {
            "name": name, "space": part.to_json(), "schedule": sched.to_json(),
            "stages": _templates(stages, {"client": link}, plan, part),
            "limit": None if limit is None else limit // workers + (1 if w < limit % workers
                                                                    else 0)}
        if assured:
            ph["split"] = {"window": WINDOW, "timeout_s": REPLY_TIMEOUT_S}
            if plan.spec.teardown:
                ph["teardown"] = {"socket": "client", "template": build_template(
                    "rst", link, part.a.start, str(plan.destination), part.p.start,
                    part.d.start).to_json()}
        out.append(ph)
    return out


def _partner_phase(plan: SurgePlan, link: Link | None, space: FlowSpace, assured: bool,
                   workers: int) -> dict[str, Any]:
    if not assured or link is None:
        return {"parts": []}
    return {"parts": [{"space": part.to_json(), "template": build_template(
        "synack", link, part.a.start, str(plan.destination), part.p.start,
        part.d.start).to_json()} for part in space.split(workers)]}


def _phases(plan: SurgePlan) -> list[tuple[str, FlowSpace, Schedule, bool, int | None]]:
    spec = plan.spec
    out: list[tuple[str, FlowSpace, Schedule, bool, int | None]] = []
    fill_space = plan.fill_space()
    if spec.fill is not None and fill_space is not None:
        out.append(("fill", fill_space, fill_schedule(spec.fill.flows, spec.fill.rate,
                                                      spec.max_duration_s), True,
                    spec.fill.flows))
    out.append(("shape", plan.space(), shape_schedule(spec.shape, plan.profile),
                 spec.mode == "assured", None))
    return out


def venue_silence(plan: SurgePlan, ifname: str) -> dict[str, Any]:
    """The venue drops every surge flow at ingress (its kernel must not answer)."""
    spec, src = plan.spec, [int(plan.src_start), int(plan.src_last)]
    dst = [int(plan.destination)] * 2
    matches: list[dict[str, Any]] = [{"proto": spec.protocol, "saddr": src, "daddr": dst,
                                      "dport": None if spec.protocol == "icmp"
                                      else list(spec.dst_ports)}]
    if spec.fill is not None:
        matches.append({"proto": "tcp", "saddr": src, "daddr": dst,
                        "dport": list(spec.fill.dst_ports)})
    return {"table": f"{PREFIX}_surge_v", "ifname": ifname, "matches": matches}


def client_silence(plan: SurgePlan, ifname: str, w: int, spaces: list[FlowSpace]
                   ) -> dict[str, Any]:
    """Sender w drops the SYN-ACKs of its own flows (its kernel would RST them)."""
    dst = [int(plan.destination)] * 2
    matches = [{"proto": "tcp", "saddr": dst,
                "daddr": [s.a.start, s.a.start + s.a.size - 1],
                "sport": [s.d.start, s.d.start + s.d.size - 1],
                "dport": [s.p.start, s.p.start + s.p.size - 1]} for s in spaces]
    return {"table": f"{PREFIX}_surge_c{w}", "ifname": ifname, "matches": matches}


def build_split(plan: SurgePlan, client: Connector, venue: Connector | None) -> SplitBuilt:
    """Every payload's config: the links and CPUs are read on the hosts themselves."""
    client_link = link_via(client, str(plan.destination))
    venue_link = link_via(venue, str(plan.src_start)) if venue is not None else None
    cpus = remote_cpus(client)
    plan = replace(plan, workers=min(plan.spec.workers or len(cpus), MAX_WORKERS))
    workers = _usable_workers(plan)
    per_worker: list[list[dict[str, Any]]] = [[] for _ in range(workers)]
    assured_parts: list[list[FlowSpace]] = [[] for _ in range(workers)]
    partner_phases = []
    for name, space, schedule, assured, limit in _phases(plan):
        for w, ph in enumerate(_phase(name, plan, client_link, space, schedule, assured,
                                      limit, workers)):
            per_worker[w].append(ph)
            if assured:
                assured_parts[w].append(FlowSpace.from_json(ph["space"]))
        partner_phases.append(_partner_phase(plan, venue_link, space, assured, workers))
    budget = plan.spec.max_packets
    dst = int(plan.destination)
    configs = []
    for w in range(workers):
        cfg: dict[str, Any] = {
            "worker": w, "workers": workers, "cpu": cpus[w % len(cpus)],
            "sockets": {"client": {"ifname": client_link.ifname}}, "phases": per_worker[w],
            "max_packets": budget // workers + (1 if w < budget % workers else 0),
            "max_duration_s": plan.spec.max_duration_s, "progress_s": 0.1,
            "networks": list(plan.networks)}
        if assured_parts[w]:
            cfg["replies"] = {"ifname": client_link.ifname, "peer": dst}
            cfg["silence"] = client_silence(plan, client_link.ifname, w, assured_parts[w])
        configs.append(cfg)
    partner = None
    if venue_link is not None:
        partner = {"ifname": venue_link.ifname, "phases": partner_phases,
                   "peer": dst, "networks": list(plan.networks), "window": WINDOW,
                   "max_packets": plan.spec.max_packets,
                   "max_duration_s": plan.spec.max_duration_s + 2 * REPLY_TIMEOUT_S,
                   "silence": venue_silence(plan, venue_link.ifname)}
    links = {"client": vars(client_link)} | ({"venue": vars(venue_link)} if venue_link else {})
    summary = {"workers": workers, "links": links, "split": True, "pcap_flows": 0}
    return SplitBuilt(configs, partner, summary)


class SplitSurge(SurgeRun):
    """SurgeRun's interface and bookkeeping; the processes run on the two hosts, each
    sender over its own SSH connection (one channel to run, one to stop it)."""

    def __init__(self, plan: SurgePlan) -> None:
        super().__init__(plan)
        self.partner: WorkerProc | None = None
        self._conns: list[Connector] = []
        self._owners: list[tuple[Connector, WorkerProc]] = []
        self.left_running: list[str] = []
        self._checked = False

    def prepare(self) -> None:
        assert self.plan.remote is not None
        try:
            client = self._connect(self.plan.remote)
            venue = self._connect(self.plan.venue) if self.plan.venue is not None else None
            built = build_split(self.plan, client, venue)
            self.summary = built.summary
            if built.partner is not None and venue is not None:
                self.partner = self._spawn(venue, "ctdrill.surge.responder", built.partner,
                                           None)
                self._await_ready([self.partner], "handshake partner")
            for i, config in enumerate(built.workers):
                conn = client if i == 0 else self._connect(self.plan.remote)
                self.workers.append(self._spawn(conn, "ctdrill.surge.worker", config,
                                                self._phase_barrier))
            self._await_ready(self.workers, "surge worker")
        except BaseException:
            self._shutdown()
            raise

    def _spawn(self, conn: Connector, main: str, config: dict[str, Any],
               on_phase_end: Callable[[], None] | None) -> WorkerProc:
        try:
            proc = spawn_module(conn, main, json.dumps(config))
        except (OSError, EOFError) as exc:
            raise EnvironmentProblem(f"cannot start {main.rsplit('.', 1)[-1]} on "
                                     f"{conn.where}: {exc}", "check the host") from None
        wp = WorkerProc(proc, on_phase_end or (lambda: None))
        self._owners.append((conn, wp))
        return wp

    def go(self) -> None:
        if self.partner is not None:
            self.partner.send("go")
        super().go()

    def _connect(self, target: Any) -> Connector:
        conn = connector_for(target)
        self._conns.append(conn)
        return conn

    @staticmethod
    def _await_ready(procs: list[WorkerProc], what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        for p in procs:
            p.ready.wait(max(0.0, deadline - time.monotonic()))
        failed = [p.failed for p in procs if p.failed or not p.ready.is_set()]
        if failed:
            raise EnvironmentProblem(f"{what} failed to start: {failed[0] or 'timeout'}",
                                     "check the hosts ('ctdrill observe', nft, python3)")

    def _release(self, live: list[WorkerProc]) -> None:
        """The partner moves to the next phase before any sender starts it."""
        if self.partner is not None:
            self.partner.send("next")
        super()._release(live)

    def stop(self, reason: str | None = None) -> dict[str, Any]:
        result = super().stop(reason)
        result["backlog_drops"] = None  # the orchestrator's softnet counters say nothing here
        p = self.partner
        if p is not None:
            view = {k: v for k, v in (p.done or p.progress).items() if k != "type"}
            error = p.failed or str(view.get("error") or "")
            result["partner"] = view | ({"error": error} if error else {})
            if error and not result.get("error"):
                result["error"] = f"handshake partner: {error}"
        result["split"] = True
        if self.left_running:
            result["left_running"] = self.left_running
            result["error"] = result.get("error") or (
                f"surge process still running after the stop: {self.left_running[0]}")
        return result

    def _shutdown(self) -> None:
        try:
            super()._shutdown()
        finally:
            if self.partner is not None:
                self.partner.send("stop")
                self.partner.reap(STOP_TIMEOUT_S)
            if not self._checked:
                self._checked = True
                self.left_running = self._still_running()
            for conn in self._conns:
                with contextlib.suppress(Exception):
                    conn.close()
            self._conns = []

    def _still_running(self) -> list[str]:
        """Every payload process checked gone on its host (`kill -0` over its connection);
        one that cannot be checked is reported as such, not assumed gone."""
        left = []
        for conn, proc in self._owners:
            pid = proc.proc.pid
            if pid is None:
                continue
            try:
                if conn.run(["kill", "-0", str(pid)], check=False, timeout=10).ok:
                    left.append(f"{conn.where} pid {pid}")
            except Exception as exc:
                left.append(f"{conn.where} pid {pid} (not verified: {exc})")
        return left
