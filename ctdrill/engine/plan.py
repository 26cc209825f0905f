"""From a spec, an inventory's host lists and the targets' snapshots, the exact plan (pure).

The plan says, per host, every sysctl's before -> after, the nftables rules that would
be added, and anything refused (kernel-wide keys on a host that does not own the
kernel). The revert plan derives from the same snapshot and is journaled before any
change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ctdrill.engine.nft_render import TABLE_FAMILY, TABLE_NAME, render_bypass_body
from ctdrill.spec.models import KERNEL_WIDE_SYSCTLS, Bypass, DrillSpec

Snapshot = Mapping[str, Any]


@dataclass(frozen=True)
class Pools:
    """The drill's targets split into canary (gets the changes) and control."""

    targets: tuple[str, ...]
    canary: tuple[str, ...]
    control: tuple[str, ...]


def select_pools(spec: DrillSpec, target_hosts: list[str]) -> Pools:
    """Deterministic canary selection: the first N hosts in name order."""
    hosts = tuple(sorted(target_hosts))
    if spec.targets.canary is None:
        return Pools(hosts, hosts, ())
    n = spec.targets.canary.size(len(hosts))
    return Pools(hosts, hosts[:n], hosts[n:])


@dataclass
class HostChanges:
    sysctl: dict[str, str] = field(default_factory=dict)
    bypass: list[Bypass] = field(default_factory=list)


def resolve_changes(spec: DrillSpec, pools: Pools,
                    select: Callable[[str], list[str]]) -> dict[str, HostChanges]:
    """Merge the spec's change sets per host (later sets win on the same key)."""
    out: dict[str, HostChanges] = {}
    for cs in spec.changes:
        hosts = select(cs.hosts) if cs.hosts else list(pools.canary)
        for host in sorted(hosts):
            hc = out.setdefault(host, HostChanges())
            hc.sysctl.update(cs.all_sysctls())
            hc.bypass.extend(cs.bypass)
    return out


@dataclass(frozen=True)
class SysctlChange:
    key: str
    before: str | None
    after: str

    @property
    def changes(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class HostPlan:
    host: str
    sysctl: tuple[SysctlChange, ...]
    nft_body: str | None
    refusals: tuple[str, ...]
    kernel_owner: bool

    def apply_vars(self, revert: dict[str, Any]) -> dict[str, Any]:
        """What apply.yml needs for this host."""
        nft = None
        if self.nft_body is not None:
            nft = {"family": TABLE_FAMILY, "table": TABLE_NAME, "body": self.nft_body}
        return {"sysctl": {c.key: c.after for c in self.sysctl}, "nft": nft, "revert": revert}

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "kernel_owner": self.kernel_owner,
            "sysctl": [{"key": c.key, "before": c.before, "after": c.after,
                        "changes": c.changes} for c in self.sysctl],
            "nft_table": f"{TABLE_FAMILY} {TABLE_NAME}" if self.nft_body else None,
            "nft_rules": self.nft_body,
            "refusals": list(self.refusals),
        }


def normalise(value: str) -> str:
    return " ".join(str(value).split())


def plan_host(host: str, changes: HostChanges, snap: Snapshot) -> HostPlan:
    values: Mapping[str, str] = snap.get("sysctl", {})
    owner = bool(snap.get("kernel_owner"))
    refusals = []
    sysctl = []
    for key, value in changes.sysctl.items():
        if key in KERNEL_WIDE_SYSCTLS and not owner:
            refusals.append(
                f"{key} is kernel-wide: it can only be changed on the host that owns the "
                f"kernel (the initial network namespace), and {host} is a namespace "
                f"(netns inode {snap.get('netns_inode')}); target the kernel_owner host")
            continue
        if key not in values:
            refusals.append(f"sysctl {key} does not exist on {host}")
            continue
        sysctl.append(SysctlChange(key, values[key], normalise(value)))
    body = render_bypass_body(changes.bypass) if changes.bypass else None
    if body is not None and [TABLE_FAMILY, TABLE_NAME] in snap.get("tables", []):
        refusals.append(f"{host} already has table {TABLE_FAMILY} {TABLE_NAME}: another drill "
                        "left it or is running; run 'ctdrill revert JOURNAL' for that run")
    return HostPlan(host, tuple(sysctl), body, tuple(refusals), owner)


def revert_plan(hp: HostPlan) -> dict[str, Any]:
    """What puts this host back: every touched sysctl's original value, our table removed."""
    return {
        "sysctl": {c.key: c.before for c in hp.sysctl if c.before is not None},
        "nft_tables": [[TABLE_FAMILY, TABLE_NAME]] if hp.nft_body is not None else [],
    }


def touched_keys(changes: Mapping[str, HostChanges]) -> list[str]:
    return sorted({k for hc in changes.values() for k in hc.sysctl})
