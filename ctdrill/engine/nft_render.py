"""Render a drill's nftables bypass rules into the body of ctdrill's own table (pure).

The table lives at priority raw (before conntrack) and marks the declared traffic
classes `notrack`, in both directions: towards the server port and its replies.
"""

from __future__ import annotations

import ipaddress

from ctdrill.spec.models import Bypass

TABLE_FAMILY = "inet"
TABLE_NAME = "ctd_drill"


def _match(b: Bypass, direction: str) -> str:
    port = f"{b.protocol} {'dport' if direction == 'in' else 'sport'} {b.port}"
    if b.network is None:
        return port
    net = ipaddress.ip_network(b.network, strict=False)
    fam = "ip" if net.version == 4 else "ip6"
    side = "daddr" if direction == "in" else "saddr"
    return f"{fam} {side} {net} {port}"


def render_bypass_body(bypasses: list[Bypass]) -> str:
    """The chains of table inet ctd_drill; one rule per class and direction."""
    rules = []
    for b in bypasses:
        for direction in ("in", "out"):
            rules.append(f'{_match(b, direction)} notrack comment "ctdrill bypass {b.name}"')
    chains = []
    for chain, hook in (("prerouting", "prerouting"), ("output", "output")):
        body = "\n".join(f"        {r}" for r in rules)
        chains.append(f"    chain {chain} {{\n        type filter hook {hook} priority raw; "
                      f"policy accept;\n{body}\n    }}")
    return "\n".join(chains)
