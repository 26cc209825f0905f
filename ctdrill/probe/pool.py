"""The probe over a pool: one client -> venue probe per lane, run side by side.

Each lane's messages carry the gateway they crossed (`Message.via`), so the judge can
compare the canary pool's tails with the control pool's under the same load.
"""

from __future__ import annotations

import functools
from typing import Any

from ctdrill.probe.metrics import Message
from ctdrill.probe.phase import ProbePhase, probe_summary
from ctdrill.probe.spec import ProbeSpec
from ctdrill.system.parallel import run_all
from ctdrill.targets.inventory import Inventory
from ctdrill.targets.pairs import pair_hosts


class ProbePool:
    """LoadPhase: the lanes' probes, prepared, started and stopped together."""

    def __init__(self, spec: ProbeSpec, lanes: list[ProbePhase]) -> None:
        self.spec = spec
        self.start_s = spec.start_s
        self.lanes = lanes

    def prepare(self) -> None:
        try:
            run_all([lane.prepare for lane in self.lanes])
        except BaseException:
            for lane in self.lanes:
                lane.stop()
            raise

    def start(self) -> None:
        run_all([lane.start for lane in self.lanes])

    def messages(self) -> list[Message]:
        return sorted((m for lane in self.lanes for m in lane.messages()), key=lambda m: m.sent)

    def live_osd_ms(self, now: float, horizon_s: float = 2.0) -> float:
        """The worst lane's state skew: the regime machine sees the pool's worst."""
        return max((lane.live_osd_ms(now, horizon_s) for lane in self.lanes), default=0.0)

    def stop(self) -> dict[str, Any]:
        lanes: list[dict[str, Any]] = []

        def stop_lane(lane: ProbePhase) -> None:
            lanes.append({"via": lane.via, **lane.stop()})

        run_all([functools.partial(stop_lane, lane) for lane in self.lanes])
        summary = probe_summary(self.spec, self.messages())
        summary["lanes"] = sorted(({k: v for k, v in r.items() if k != "windows"}
                                   for r in lanes), key=lambda r: str(r["via"]))
        return summary


def build_probe(spec: ProbeSpec, inv: Inventory, observe_s: float) -> ProbePhase | ProbePool:
    """One probe for a client and a venue; a pool of them for two groups (one per lane)."""
    pairs = pair_hosts(inv, spec.client, spec.venue, "probe")
    if len(pairs) == 1:
        return ProbePhase(spec, inv, observe_s, pairs[0])
    return ProbePool(spec, [ProbePhase(spec, inv, observe_s, p) for p in pairs])
