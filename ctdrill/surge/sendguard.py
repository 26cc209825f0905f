"""The destination guard, again on the sending host, just before frames leave.

The orchestrator refuses a plan whose addresses leave the declared target networks
(guard.py). A shipped sender checks once more what it is about to put on the wire,
from the frames themselves: every destination address of every template over its
whole flow range must lie inside `ctdrill_target_networks`. A config that was altered
or mis-built therefore cannot make a remote host send elsewhere. Standard library
only (shipped, connect/payload.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ctdrill.surge.flowspace import FlowSpace
from ctdrill.surge.frames import Template

IP_DST = 30
"""Ethernet (14) + the IPv4 destination's offset (16)."""


class OutsideNetworks(ValueError):
    """A frame would go to an address outside the target networks."""


def destinations(template: Template, space: FlowSpace) -> list[int]:
    """The first and last destination address the template sends to over the space."""
    off = template.fields.get("a", (0, 0))[0]
    if off == IP_DST:  # the flow's address is the destination (a reply towards clients)
        return [space.a.start, space.a.start + space.a.size - 1]
    return [int.from_bytes(template.frame[IP_DST:IP_DST + 4], "big")]


def check(templates: Sequence[Template], space: FlowSpace, networks: Sequence[str]) -> None:
    """Every template's destinations (a range's first and last address) inside ONE of
    the networks, as guard.py asks of the plan (two ends in two networks could span a
    third one between them)."""
    nets = [ipaddress.ip_network(n, strict=False) for n in networks]
    if not nets:
        raise OutsideNetworks("no target networks declared: refusing to send")
    for template in templates:
        ends = [ipaddress.IPv4Address(a) for a in destinations(template, space)]
        if not any(all(ip in n for ip in ends) for n in nets):
            shown = "-".join(dict.fromkeys(map(str, ends)))
            raise OutsideNetworks(f"destination {shown} is outside the target networks "
                                  f"{', '.join(map(str, nets))}: refusing to send")
