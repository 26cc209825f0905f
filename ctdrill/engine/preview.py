"""`ctdrill plan`: the exact per-host diff of a drill, from read-only snapshots."""

from __future__ import annotations

from pathlib import Path

from ctdrill.engine.hostops import HostOps
from ctdrill.engine.plan import (
    HostPlan,
    plan_host,
    refuse_unobserved_guards,
    resolve_changes,
    select_pools,
    touched_keys,
)
from ctdrill.spec.models import DrillSpec
from ctdrill.targets.inventory import Inventory


def preview(spec: DrillSpec,
            inventory_path: Path) -> tuple[dict[str, HostPlan], dict[str, list[str]]]:
    """Plans per host (read-only) and the canary/control pools."""
    inv = Inventory(inventory_path)
    pools = select_pools(spec, [t.name for t in inv.select(spec.targets.hosts)])
    changes = resolve_changes(spec, pools, lambda p: [t.name for t in inv.select(p)])
    refuse_unobserved_guards(spec, lambda p: [t.name for t in inv.select(p)])
    plans: dict[str, HostPlan] = {}
    if changes:
        snaps = HostOps(inventory_path, "plan").snapshot(sorted(changes), touched_keys(changes))
        plans = {h: plan_host(h, changes[h], snaps[h]) for h in sorted(changes)}
    return plans, {"targets": list(pools.targets), "canary": list(pools.canary),
                   "control": list(pools.control)}
