"""The load phase seam, a leaf: what the engine drives (`LoadPhase`) and what a load kind
is built from (`LoadContext`). Load kinds (surge, probe, udp-flows) import these from
here, never from engine/load.py, which imports them back to build them (no cycle)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ctdrill.targets.inventory import Inventory


class LoadPhase(Protocol):
    start_s: float

    def prepare(self) -> None:
        """Before the observation starts: open every connection and start every helper
        process the load needs (a full table later drops new connections to a host)."""

    def start(self) -> None:
        """Begin, without blocking."""

    def stop(self) -> dict[str, Any]:
        """End (early if still running) and report what was done."""


@dataclass(frozen=True)
class LoadContext:
    inventory: Inventory
    base_dir: Path | None = None
    """Where relative paths in the load spec (replay profiles, pcaps) are resolved:
    the spec file's directory."""
