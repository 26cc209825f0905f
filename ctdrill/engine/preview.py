"""`ctdrill plan`: the exact per-host diff of a drill, from read-only snapshots, or
offline from the spec and the inventory alone (a fleet whose hosts need not exist).

Online, every host the drill would change is snapshotted in one Ansible play (forks
sized to those hosts): a host that cannot be reached fails the plan as it would fail
the run's prepare (exit 5, naming the unreachable hosts). Offline, nothing is
contacted: the plan has the pools, every change (after values, the bypass table), the
rollout's waves and the refusals that need no facts; what only a snapshot can tell is
listed as unchecked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctdrill.ansible.runner import host_pattern
from ctdrill.engine.hostops import HostOps
from ctdrill.engine.nft_render import render_bypass_body
from ctdrill.engine.plan import (
    HostChanges,
    HostPlan,
    SysctlChange,
    normalise,
    plan_host,
    refuse_pool_expectations_without_pools,
    refuse_unobserved_guards,
    resolve_changes,
    select_pools,
    touched_keys,
)
from ctdrill.engine.waves import Waves, plan_waves
from ctdrill.errors import EnvironmentProblem
from ctdrill.spec.models import DrillSpec
from ctdrill.targets.inventory import Inventory

UNCHECKED_OFFLINE = (
    "each sysctl's current value (before)",
    "that each sysctl exists on its host",
    "that kernel-wide sysctls are set only on the host that owns the kernel",
    "that no host already has table inet ctd_drill (another run's)",
)
"""What an offline plan cannot know: each needs the host's snapshot."""

OFFLINE_HINT = "or plan without reading the hosts: ctdrill plan SPEC -i INVENTORY --offline"


@dataclass(frozen=True)
class OfflineHostPlan(HostPlan):
    """A host's plan made without its facts: no before values, kernel ownership unknown."""

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["kernel_owner"] = None
        for change in out["sysctl"]:
            change["changes"] = None
        return out


def offline_plan(host: str, changes: HostChanges) -> HostPlan:
    """What the drill would change on `host`, without its snapshot (pure)."""
    sysctl = tuple(SysctlChange(k, None, normalise(v)) for k, v in changes.sysctl.items())
    body = render_bypass_body(changes.bypass) if changes.bypass else None
    return OfflineHostPlan(host, sysctl, body, (), False)


@dataclass(frozen=True)
class Preview:
    """What `ctdrill plan` shows: per-host plans, the pools and the rollout's waves."""

    plans: dict[str, HostPlan]
    pools: dict[str, list[str]]
    waves: Waves = ()
    """Empty without `rollout`; else the changed hosts, wave by wave (engine/waves.py)."""


def preview(spec: DrillSpec, inventory_path: Path, offline: bool = False) -> Preview:
    """Plans per host (read-only, or offline), the canary/control pools and the waves."""
    inv = Inventory(inventory_path)
    targets = inv.select(spec.targets.hosts)  # each target's variables checked once
    pools = select_pools(spec, [t.name for t in targets])
    changes = resolve_changes(spec, pools, inv.names)
    refuse_unobserved_guards(spec, inv.names)
    refuse_pool_expectations_without_pools(spec, pools)
    plans: dict[str, HostPlan] = {}
    if changes:
        host_pattern(list(changes))  # a name no play could be pointed at: refused here
        plans = (_offline(changes) if offline
                 else _snapshotted(inventory_path, changes))
    waves = plan_waves(spec.rollout, changes) if spec.rollout and changes else ()
    return Preview(plans, {"targets": list(pools.targets), "canary": list(pools.canary),
                           "control": list(pools.control)}, waves)


def _offline(changes: dict[str, HostChanges]) -> dict[str, HostPlan]:
    return {h: offline_plan(h, changes[h]) for h in sorted(changes)}


def _snapshotted(inventory_path: Path, changes: dict[str, HostChanges],
                 ) -> dict[str, HostPlan]:
    try:
        snaps = HostOps(inventory_path, "plan").snapshot(sorted(changes),
                                                         touched_keys(changes))
    except EnvironmentProblem as exc:
        raise EnvironmentProblem(exc.message, f"{exc.hint}; {OFFLINE_HINT}"
                                 if exc.hint else OFFLINE_HINT) from exc
    return {h: plan_host(h, changes[h], snaps[h]) for h in sorted(changes)}
