"""A load over a pool: the same load kind once per lane, prepared, started and stopped
together; its result sums the lanes' counters and keeps each lane's result."""

from __future__ import annotations

import functools
from typing import Any

from ctdrill.engine.load_context import LoadPhase
from ctdrill.system.parallel import run_all

SUMMED = ("flows", "packets", "completed", "sent", "errors", "shortfall")


class PooledLoad:
    def __init__(self, lanes: list[LoadPhase], vias: list[str]) -> None:
        self.lanes = lanes
        self.vias = vias
        self.start_s = min(lane.start_s for lane in lanes)

    def prepare(self) -> None:
        run_all([lane.prepare for lane in self.lanes])

    def start(self) -> None:
        run_all([lane.start for lane in self.lanes])

    def stop(self) -> dict[str, Any]:
        results: dict[str, dict[str, Any]] = {}

        def stop_lane(via: str, lane: LoadPhase) -> None:
            results[via] = lane.stop()

        run_all([functools.partial(stop_lane, v, lane)
                 for v, lane in zip(self.vias, self.lanes, strict=True)])
        lanes = [{"via": v, **results.get(v, {})} for v in self.vias]
        out: dict[str, Any] = {"kind": lanes[0].get("kind", "pool"), "lanes": lanes}
        for key in SUMMED:
            values = [r[key] for r in lanes if isinstance(r.get(key), int | float)]
            if values:
                out[key] = sum(values)
        errors = [f"{r['via']}: {r['error']}" for r in lanes if r.get("error")]
        if errors:
            out["error"] = "; ".join(errors)
        return out
