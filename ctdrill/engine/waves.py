"""Rolling waves, the pure part: which hosts each wave changes, and when a guard stops it.

Ansible's `serial` is the model: a count, a percent of the rollout's hosts, or a list of
them (one per wave, the last repeated). Unlike Ansible a percent is rounded up (as
`targets.canary.percent` is), so "25%" of 6 hosts is 2, never 1. Hosts go in name
order, so the same spec and inventory always give the same waves (and `ctdrill plan`
can show them without contacting a host).

Between waves the guards are checked on the hosts changed so far: every guard ceiling
(engine/guards.py) on each window of telemetry that ended after the host's wave was
applied, and, with `halt_regime`, each host's regime. A wave has settled when its pause
is over and every checked host has sent a window since the wave was applied.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctdrill.engine.guards import ceiling_breach
from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.regime.states import Regime
from ctdrill.spec.models import Ceiling, Rollout, WaveSize

Waves = tuple[tuple[str, ...], ...]
CeilingHosts = Sequence[tuple[Ceiling, frozenset[str]]]
"""Each guard ceiling with the inventory hosts its pattern selects."""


def wave_size(entry: WaveSize, n_hosts: int) -> int:
    """One `serial` entry as a host count: a count as is, a percent rounded up (>= 1)."""
    if isinstance(entry, int):
        return entry
    return max(1, math.ceil(n_hosts * int(entry.rstrip("%")) / 100))


def wave_sizes(serial: WaveSize | list[WaveSize], n_hosts: int) -> list[int]:
    """The size of each wave over `n_hosts` hosts; the last entry repeats, and the last
    wave takes what is left."""
    entries: list[WaveSize] = list(serial) if isinstance(serial, list) else [serial]
    sizes: list[int] = []
    left = n_hosts
    while left > 0:
        size = min(left, wave_size(entries[min(len(sizes), len(entries) - 1)], n_hosts))
        sizes.append(size)
        left -= size
    return sizes


def plan_waves(rollout: Rollout, hosts: Collection[str]) -> Waves:
    """The rollout's waves over `hosts`, in name order: each host in exactly one wave."""
    order = sorted(set(hosts))
    waves: list[tuple[str, ...]] = []
    for size in wave_sizes(rollout.serial, len(order)):
        start = sum(len(w) for w in waves)
        waves.append(tuple(order[start:start + size]))
    return tuple(waves)


@dataclass(frozen=True)
class Trip:
    """A guard that stopped the rollout: which one, on which host, and the one line."""

    guard: str
    """`ceiling METRIC > VALUE`, `regime >= REGIME` or `telemetry`."""
    host: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"guard": self.guard, "host": self.host, "reason": self.reason}


@dataclass(frozen=True)
class WaveGuards:
    """The guards a rollout checks between waves, and the hosts whose telemetry they read."""

    ceilings: CeilingHosts
    halt_regime: Regime | None = None

    def watched(self, hosts: Collection[str]) -> list[str]:
        """The rollout hosts a check needs telemetry from: those a ceiling protects,
        and all of them with a regime guard."""
        if self.halt_regime is not None:
            return sorted(hosts)
        return sorted(h for h in hosts if any(h in on for _c, on in self.ceilings))

    def window(self, host: str, m: WindowMetrics, received: float,
               applied_at: Mapping[str, float]) -> Trip | None:
        """A ceiling breach in a window of a changed host that ended (arrived) after its
        wave was applied; windows of hosts not changed yet are not checked."""
        since = applied_at.get(host)
        if since is None or received < since:
            return None
        for ceiling, on in self.ceilings:
            reason = ceiling_breach(ceiling, set(on), host, m)
            if reason is not None:
                return Trip(f"ceiling {ceiling.metric} > {ceiling.above:g}", host, reason)
        return None

    def regime(self, host: str, regime: Regime, applied: Collection[str]) -> Trip | None:
        """A changed host whose regime reached the halt regime (or a worse one)."""
        halt = self.halt_regime
        if halt is None or host not in applied or regime.level < halt.level:
            return None
        return Trip(f"regime >= {halt.value}", host,
                    f"guard: {host} is in {regime.value} (rollout.halt_regime "
                    f"{halt.value})")


def telemetry_trip(host: str, why: str) -> Trip:
    """A watched host whose telemetry stalled or ended: a guard that cannot see its
    host protects nothing, so the rollout stops (as a lost guarded host aborts a run)."""
    return Trip("telemetry", host, f"guard: {host}: telemetry {why} during the rollout; "
                "a guarded host must stay observed")


def settled(elapsed_s: float, pause_s: float, fresh: Collection[str],
            checked: Collection[str]) -> bool:
    """A wave's check is over when its pause is and each checked host has sent a
    window since the wave was applied (so a pause of 0 still reads every host once)."""
    return elapsed_s >= pause_s and set(checked) <= set(fresh)


@dataclass
class Tally:
    """What one wave's check saw, per checked host, for its journal record."""

    metrics: tuple[str, ...]
    windows: dict[str, int] = field(default_factory=dict)
    peaks: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, host: str, m: WindowMetrics) -> None:
        """Count a checked window and keep the highest value of each guarded metric."""
        self.windows[host] = self.windows.get(host, 0) + 1
        peaks = self.peaks.setdefault(host, {})
        for name in self.metrics:
            value = getattr(m, name)
            peaks[name] = value if name not in peaks else max(peaks[name], value)


@dataclass
class RolloutOutcome:
    """What the rollout did: its waves, those applied, and the guard that stopped it."""

    waves: Waves
    applied: list[int] = field(default_factory=list)
    """Indexes (from 0) of the waves whose changes were applied in full."""
    stopped_after: int | None = None
    """The index of the wave whose check tripped a guard."""
    trip: Trip | None = None

    def to_json(self) -> dict[str, Any]:
        return {"waves": [list(w) for w in self.waves], "applied": list(self.applied),
                "stopped": None if self.trip is None else {
                    "wave": self.stopped_after, **self.trip.to_json()}}


def wave_vars(per_host: Mapping[str, dict[str, Any]], waves: Waves,
              index: int) -> dict[str, dict[str, Any]]:
    """What wave `index`'s play applies. The first play arms every prepared host's
    dead-man switch, so it carries them all: the first wave's hosts with their changes,
    every other host armed only (its revert plan, no change yet). Later plays carry
    their own wave's hosts."""
    wave = waves[index]
    if index:
        return {h: per_host[h] for h in wave}
    return {h: hv if h in wave else {**hv, "sysctl": {}, "nft": None}
            for h, hv in per_host.items()}
