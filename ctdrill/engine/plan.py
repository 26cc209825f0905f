"""From a spec, an inventory's host lists and the targets' snapshots, the exact plan (pure).

The plan says, per host, every sysctl's before -> after, the nftables rules that would
be added, and anything refused (kernel-wide keys on a host that does not own the
kernel). The revert plan derives from the same snapshot and is journaled before any
change.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctdrill.engine.nft_render import TABLE_FAMILY, TABLE_NAME, render_bypass_body
from ctdrill.errors import InvalidInput
from ctdrill.spec.models import (
    KERNEL_WIDE_SYSCTLS,
    Bypass,
    CanaryVsControlExpectation,
    ChangeSet,
    DrillSpec,
)

Snapshot = Mapping[str, Any]


@dataclass(frozen=True)
class Pools:
    """The drill's targets split into canary (gets the changes) and control."""

    targets: tuple[str, ...]
    canary: tuple[str, ...]
    control: tuple[str, ...]


def select_pools(spec: DrillSpec, target_hosts: list[str]) -> Pools:
    """Deterministic canary selection: the first N hosts in name order, or with a seed N
    hosts of a seeded shuffle of the sorted names (independent of inventory order and
    of Python's hash seed). The rest is the control pool; both go into the journal."""
    hosts = tuple(sorted(target_hosts))
    canary = spec.targets.canary
    if canary is None:
        return Pools(hosts, hosts, ())
    n = canary.size(len(hosts))
    order = list(hosts)
    if canary.seed is not None:
        random.Random(canary.seed).shuffle(order)
    chosen = set(order[:n])
    return Pools(hosts, tuple(h for h in hosts if h in chosen),
                 tuple(h for h in hosts if h not in chosen))


def refuse_pool_expectations_without_pools(spec: DrillSpec, pools: Pools) -> None:
    """An expectation about the canary or control pool needs both pools: a drill
    without `targets.canary`, or whose canary takes every target, cannot compare them."""
    for e in spec.expect:
        pool = "both" if isinstance(e, CanaryVsControlExpectation) else getattr(e, "pool", None)
        if pool in (None, "all"):
            continue
        if not pools.control or spec.targets.canary is None:
            raise InvalidInput(f"expectation '{e.describe()}' compares pools, but the drill "
                               "has no control pool",
                               "set targets.canary to a count or percent below all targets")


def unobserved_guards(spec: DrillSpec, select: Callable[[str], list[str]]) -> list[str]:
    """Hosts a guard ceiling names that the drill does not sample: a ceiling there could
    never fire, so the drill would run unguarded while its spec says otherwise."""
    observed = set(select(spec.observe.hosts or spec.targets.hosts))
    guarded = {h for c in spec.guards.ceilings for h in select(c.hosts)}
    return sorted(guarded - observed)


def refuse_unobserved_guards(spec: DrillSpec, select: Callable[[str], list[str]]) -> None:
    """Refuse (exit 2) a ceiling on a host that is not observed; reads only the inventory."""
    missing = unobserved_guards(spec, select)
    if missing:
        pattern = spec.observe.hosts or spec.targets.hosts
        source = "observe.hosts" if spec.observe.hosts else "targets.hosts (observe.hosts unset)"
        raise InvalidInput(
            f"guards.ceilings names {', '.join(missing)}, which the drill does not observe "
            f"({source} is '{pattern}'): the ceiling could never fire",
            "add the guarded hosts to observe.hosts, or drop the ceiling")


@dataclass
class HostChanges:
    sysctl: dict[str, str] = field(default_factory=dict)
    bypass: list[Bypass] = field(default_factory=list)


def resolve_changes(spec: DrillSpec, pools: Pools,
                    select: Callable[[str], list[str]],
                    change_sets: Sequence[ChangeSet] | None = None) -> dict[str, HostChanges]:
    """Merge change sets per host (later sets win on the same key); default: the spec's
    top-level changes (steps pass their own)."""
    out: dict[str, HostChanges] = {}
    for cs in spec.changes if change_sets is None else change_sets:
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


def merged_revert_plan(plans: Iterable[HostPlan]) -> dict[str, Any]:
    """One revert plan for a host changed by several plans (base changes and steps)."""
    sysctl: dict[str, str] = {}
    tables: list[list[str]] = []
    for hp in plans:
        rp = revert_plan(hp)
        for key, original in rp["sysctl"].items():
            sysctl.setdefault(key, original)
        tables += [t for t in rp["nft_tables"] if t not in tables]
    return {"sysctl": sysctl, "nft_tables": tables}


def touched_keys(*changes: Mapping[str, HostChanges]) -> list[str]:
    return sorted({k for c in changes for hc in c.values() for k in hc.sysctl})


def strip_table(ruleset: str, family: str = TABLE_FAMILY, name: str = TABLE_NAME) -> str:
    """The ruleset without one top-level table block (as `nft -s list ruleset` prints it)."""
    out, skipping = [], False
    for line in ruleset.splitlines(keepends=True):
        if line.startswith(f"table {family} {name} {{"):
            skipping = True
            continue
        if skipping:
            if line.rstrip("\n") == "}":
                skipping = False
            continue
        out.append(line)
    return "".join(out)


def applied_diffs(original: Snapshot, now: Snapshot, hp: HostPlan) -> list[str]:
    """Differences between a host's state after apply and exactly what the plan said:
    planned keys at their new values, every other writable key unchanged, and the
    ruleset equal to the original plus (only) ctdrill's own table."""
    diffs = []
    planned = {c.key: c.after for c in hp.sysctl}
    keys = set(original.get("writable", [])) | set(planned)
    keys.discard("net.netfilter.nf_conntrack_count")
    for key in sorted(keys):
        want = planned.get(key, original.get("sysctl", {}).get(key))
        got = now.get("sysctl", {}).get(key)
        if want != got:
            diffs.append(f"sysctl {key}: plan says {want}, host has {got}")
    if strip_table(str(now.get("ruleset", ""))) != original.get("ruleset"):
        diffs.append("nftables ruleset changed beyond table inet ctd_drill")
    if hp.nft_body is not None and f"table {TABLE_FAMILY} {TABLE_NAME} {{" not in str(
            now.get("ruleset", "")):
        diffs.append("table inet ctd_drill is missing")
    return diffs
