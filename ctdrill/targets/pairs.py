"""Pair the hosts at the two ends of a load or probe: one pair in a one-gateway lab, one
per lane in a pool (pure, given the inventory's answer)."""

from __future__ import annotations

from ctdrill.errors import InvalidInput
from ctdrill.targets.inventory import Inventory
from ctdrill.targets.target import Target


def pair_targets(sources: list[Target], destinations: list[Target],
                 what: str) -> list[tuple[Target, Target]]:
    """The i-th source (by name) with the i-th destination: a pool's lanes are numbered
    the same at both ends (client03 -> gw03 -> venue03), and each pair's traffic crosses
    the gateway its source names in `ctdrill_via`."""
    if len(sources) != len(destinations):
        raise InvalidInput(
            f"{what}: {len(sources)} source host(s) but {len(destinations)} destination(s)",
            "give a host at each end, or two groups of the same size (clients, venues)")
    by_name = sorted(sources, key=lambda t: t.name), sorted(destinations, key=lambda t: t.name)
    return list(zip(*by_name, strict=True))


def pair_hosts(inv: Inventory, sources: str, destinations: str,
               what: str) -> list[tuple[Target, Target]]:
    """Pairs for two inventory names (hosts or groups)."""
    return pair_targets(inv.select(sources), inv.select(destinations), what)
