"""The probe as a drill load phase: venue responder + order client on their hosts.

Both sides are stdlib scripts spawned through their host's connector, the source shipped
in the command (`python3 -u -c SOURCE ...`, like the telemetry agent), so any transport
works. Their JSON lines are read by threads, so the engine can ask for live state skew
(for the regime machine) while the probe runs, and gets all messages joined with the
venue's ground truth at the end.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any

from ctdrill.connect import Connector, Spawned, connector_for
from ctdrill.errors import EnvironmentProblem, InvalidInput
from ctdrill.metrics.quantile import nearest_rank
from ctdrill.probe import client as client_script
from ctdrill.probe import venue as venue_script
from ctdrill.probe.metrics import Message, join, windows
from ctdrill.probe.spec import ProbeSpec
from ctdrill.targets.inventory import Inventory
from ctdrill.targets.target import Target

VENUE_SOURCE = Path(venue_script.__file__)
CLIENT_SOURCE = Path(client_script.__file__)


class _Reader:
    """Collects JSON lines from a spawned script's stdout in a thread."""

    def __init__(self, proc: Spawned) -> None:
        self.proc = proc
        self.records: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self.proc:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("ev") == "ready":
                self.ready.set()
            self.records.append(rec)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def script_argv(python: str, source: str, args: list[str]) -> list[str]:
    """A stdlib script as one command: its source travels as the `-c` argument."""
    return [python, "-u", "-c", source, *args]


def venue_args(spec: ProbeSpec) -> list[str]:
    return ["--tcp-port", str(spec.tcp_port), "--udp-port", str(spec.udp_port)]


def client_args(spec: ProbeSpec, venue_addr: str, duration_s: float) -> list[str]:
    s = spec
    return ["--venue", venue_addr, "--tcp-port", str(s.tcp_port), "--udp-port", str(s.udp_port),
            "--report-port", str(s.report_port), "--proto", s.proto, "--rate", str(s.rate),
            "--duration", str(duration_s), "--timeout", str(s.timeout_s),
            "--retries", str(s.retries), "--fill-ratio", str(s.fill_ratio),
            "--cancel-ratio", str(s.cancel_ratio), "--replace-ratio", str(s.replace_ratio)]


def _stop(proc: Spawned | None) -> None:
    if proc is not None:
        proc.stop(grace=3)


class ProbePhase:
    """LoadPhase for the order-flow probe."""

    def __init__(self, spec: ProbeSpec, inventory: Inventory, observe_s: float,
                 pair: tuple[Target, Target] | None = None) -> None:
        """`pair` (client, venue) for one lane of a pool; else the spec's hosts."""
        self.spec = spec
        client, venue = pair or (inventory.target(spec.client), inventory.target(spec.venue))
        self.start_s = spec.start_s
        self.duration_s = spec.duration_s or max(0.5, observe_s - spec.start_s)
        self.via = client.via
        if venue.addr is None:
            raise InvalidInput(f"probe venue {venue.name} has no ctdrill_addr",
                               "set ctdrill_addr in the inventory")
        self.client_host, self.venue_host, self.venue_addr = client, venue, venue.addr
        self._conns: list[Connector] = []
        self._client_conn: Connector | None = None
        self._venue: Spawned | None = None
        self._client: Spawned | None = None
        self._vr: _Reader | None = None
        self._cr: _Reader | None = None

    def _spawn(self, conn: Connector, source: Path, args: list[str]) -> Spawned:
        self._conns.append(conn)
        return conn.spawn(script_argv(conn.python, source.read_text(), args))

    def prepare(self) -> None:
        """The venue responder running and the client's connection open, before any
        load: the client then starts over a channel of an existing connection."""
        try:
            self._prepare()
        except BaseException:
            self._shutdown()
            raise

    def _prepare(self) -> None:
        if self._venue is not None:
            return
        s = self.spec
        self._venue = self._spawn(connector_for(self.venue_host), VENUE_SOURCE, venue_args(s))
        self._vr = _Reader(self._venue)
        if not self._vr.ready.wait(10):
            _stop(self._venue)
            raise EnvironmentProblem("probe venue responder did not start",
                                     self._venue.stderr_tail()
                                     or f"is port {s.tcp_port}/{s.udp_port} free in the venue?")
        self._client_conn = connector_for(self.client_host)
        self._conns.append(self._client_conn)
        self._client_conn.run(["true"], timeout=30)  # opens the connection now

    def start(self) -> None:
        try:
            self._prepare()
            assert self._client_conn is not None
            self._client = self._client_conn.spawn(script_argv(
                self._client_conn.python, CLIENT_SOURCE.read_text(),
                client_args(self.spec, str(self.venue_addr), self.duration_s)))
            self._cr = _Reader(self._client)
        except BaseException:
            self._shutdown()
            raise

    def _shutdown(self) -> None:
        """Both scripts stopped (idempotent), their readers drained, connections closed."""
        _stop(self._client)
        _stop(self._venue)
        for r in (self._cr, self._vr):
            if r is not None:
                r.join(2)
        for conn in self._conns:
            conn.close()

    def messages(self) -> list[Message]:
        if self._cr is None or self._vr is None:
            return []
        msgs = join(list(self._cr.records), list(self._vr.records))
        return [dataclasses.replace(m, via=self.via) for m in msgs] if self.via else msgs

    def live_osd_ms(self, now: float, horizon_s: float = 2.0) -> float:
        """State skew right now: the p95, over venue state changes (accepts, fills) of the
        last `horizon_s`, of how long the client lagged; not yet seen counts up to now."""
        if self._vr is None or self._cr is None:
            return 0.0
        client = list(self._cr.records)
        acked = {(r["id"], r["verb"]): r.get("acked") for r in client if r.get("ev") == "msg"}
        filled = {r["id"]: float(r["t"]) for r in client if r.get("ev") == "fill"}
        skews = []
        for v in list(self._vr.records):
            ev = v.get("ev")
            if ev not in ("accept", "fill") or now - float(v["t"]) > horizon_s:
                continue
            seen = acked.get((v["id"], v["verb"])) if ev == "accept" else filled.get(v["id"])
            skews.append(((seen if seen is not None else now) - float(v["t"])) * 1000)
        return nearest_rank(skews, 0.95) or 0.0

    def stop(self) -> dict[str, Any]:
        if self._client is not None:
            self._client.wait(timeout=self.spec.timeout_s * (self.spec.retries + 1) * 2 + 3)
        self._shutdown()
        return probe_summary(self.spec, self.messages())


def probe_summary(spec: ProbeSpec, msgs: list[Message]) -> dict[str, Any]:
    """The probe's load result: counts, dwell quantiles and per-window metrics."""
    dwell = [m.dwell * 1000 for m in msgs if m.dwell is not None]
    return {
        "kind": "probe",
        "messages": len(msgs),
        "timeouts": sum(m.timed_out for m in msgs),
        "retried": sum(m.attempts > 1 for m in msgs),
        "lost_reports": sum(m.lost_report for m in msgs),
        "dwell_ms_p50": nearest_rank(dwell, 0.5), "dwell_ms_p99": nearest_rank(dwell, 0.99),
        "windows": [w.to_json() for w in windows(
            msgs, spec.window_s, spec.drift, spec.timeout_s, spec.burst_window_ms / 1000)],
        "finished_at": time.time(),
    }
