"""The load registry: the engine starts and stops a load without knowing its kind.

New kinds (surge, order-flow probe) register a builder in LOADS and plug in without
touching the engine. The interface itself (`LoadPhase`, `LoadContext`) lives in the leaf
engine/load_context.py, so load kinds need not import this module (re-exported here).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ctdrill.connect import connector_for
from ctdrill.engine.load_context import LoadContext, LoadPhase
from ctdrill.engine.pooled import PooledLoad
from ctdrill.errors import InvalidInput
from ctdrill.lab.flows import udp_flows
from ctdrill.spec.models import NoLoad, UdpFlowsLoad
from ctdrill.surge.phase import SurgePhase
from ctdrill.surge.spec import SurgeLoad
from ctdrill.targets.pairs import pair_hosts

__all__ = ["LOADS", "IdleLoad", "LoadContext", "LoadPhase", "UdpFlows", "build_load"]


class IdleLoad:
    start_s = 0.0

    def prepare(self) -> None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> dict[str, Any]:
        return {"kind": "none"}


class UdpFlows:
    """Runs the socket flow source on the source host (through its connector) in a
    thread; it is short and bounded by its flow count."""

    def __init__(self, spec: UdpFlowsLoad, ctx: LoadContext) -> None:
        self.start_s = spec.start_s
        self.spec = spec
        self.source = ctx.inventory.target(spec.source)
        self.networks = self.source.networks
        if spec.destination in ctx.inventory.hostnames():
            addr = ctx.inventory.target(spec.destination).addr
            if addr is None:
                raise InvalidInput(f"host {spec.destination} has no ctdrill_addr",
                                   "set ctdrill_addr or give an IP address")
            self.destination = addr
        else:
            self.destination = spec.destination
        self._result: dict[str, Any] = {"kind": "udp-flows", "sent": 0, "errors": 0}
        self._thread: threading.Thread | None = None

    def prepare(self) -> None:
        return None

    def _run(self) -> None:
        try:
            conn = connector_for(self.source)
            try:
                sent, errors = udp_flows(conn, self.destination, self.spec.flows,
                                         self.networks)
            finally:
                conn.close()
            self._result.update(sent=sent, errors=errors)
        except Exception as exc:  # reported in the result, not lost in a thread
            self._result["error"] = str(exc)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="ctd-load")
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        if self._thread is not None:
            self._thread.join(timeout=30)
        return dict(self._result)


def build_surge(spec: SurgeLoad, ctx: LoadContext) -> LoadPhase:
    """One surge from a source host to a destination; over a pool (two groups), one per
    lane, each as written: the load a drill declares is each gateway's share."""
    inv = ctx.inventory
    if spec.destination not in inv.hostnames() and not inv.has_group(spec.destination):
        return SurgePhase(spec, ctx)  # an address
    pairs = pair_hosts(inv, spec.source, spec.destination, "load")
    if len(pairs) == 1:
        return SurgePhase(spec.model_copy(update={"source": pairs[0][0].name,
                                                  "destination": pairs[0][1].name}), ctx)
    return PooledLoad([SurgePhase(spec.model_copy(update={"source": s.name,
                                                          "destination": d.name}), ctx)
                       for s, d in pairs], [s.via or s.name for s, _ in pairs])


LOADS: dict[type, Callable[[Any, LoadContext], LoadPhase]] = {
    NoLoad: lambda spec, ctx: IdleLoad(),
    UdpFlowsLoad: UdpFlows,
    SurgeLoad: build_surge,
}


def build_load(spec: Any, ctx: LoadContext) -> LoadPhase:
    return LOADS[type(spec)](spec, ctx)
