"""The destination guard (pure): a surge goes only to the networks the inventory declares.

A surge sends hundreds of thousands of packets per second with forged source ports and
addresses; sent anywhere else it is an attack. So the destination and every source
address must lie inside the source host's `ctdrill_target_networks`, and a host that
declares none may send nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ctdrill.errors import InvalidInput


def _networks(networks: Sequence[str], source: str) -> list[ipaddress.IPv4Network]:
    if not networks:
        raise InvalidInput(f"host '{source}' declares no ctdrill_target_networks",
                           "set ctdrill_target_networks (CIDRs the surge may reach) on it")
    out = []
    for n in networks:
        try:
            net = ipaddress.ip_network(n, strict=False)
        except ValueError:
            raise InvalidInput(f"host '{source}': ctdrill_target_networks entry {n!r} is "
                               "not a network", "use CIDRs such as 10.78.0.0/16") from None
        if isinstance(net, ipaddress.IPv4Network):
            out.append(net)
    if not out:
        raise InvalidInput(f"host '{source}' declares no IPv4 target network",
                           "the surge sends IPv4; add an IPv4 CIDR")
    return out


def check_destination(destination: str, networks: Sequence[str],
                      source: str) -> ipaddress.IPv4Address:
    """The destination as an address, or InvalidInput if it is outside the networks."""
    try:
        addr = ipaddress.ip_address(destination)
    except ValueError:
        raise InvalidInput(f"destination {destination!r} is neither an inventory host nor "
                           "an IP address", "name an inventory host or an IPv4 address"
                           ) from None
    if not isinstance(addr, ipaddress.IPv4Address):
        raise InvalidInput(f"destination {destination} is IPv6",
                           "the surge sends IPv4 only for now")
    nets = _networks(networks, source)
    if not any(addr in n for n in nets):
        raise InvalidInput(f"destination {addr} is outside the target networks of "
                           f"'{source}' ({', '.join(map(str, nets))})",
                           "the surge only sends to declared target networks")
    if any(addr in (n.network_address, n.broadcast_address) and n.prefixlen < 31
           for n in nets):
        raise InvalidInput(f"destination {addr} is a network or broadcast address",
                           "name one host")
    return addr


def source_range(first: str, count: int, networks: Sequence[str],
                 source: str) -> tuple[ipaddress.IPv4Address, int]:
    """`count` source addresses from `first`, all inside one declared network."""
    try:
        start = ipaddress.ip_address(first)
    except ValueError:
        raise InvalidInput(f"host '{source}' has ctdrill_addr {first!r}, not an address",
                           "fix ctdrill_addr") from None
    if not isinstance(start, ipaddress.IPv4Address):
        raise InvalidInput(f"host '{source}' has an IPv6 ctdrill_addr",
                           "the surge sends IPv4 only for now")
    nets = _networks(networks, source)
    last = start + (count - 1) if int(start) + count - 1 <= 0xFFFFFFFF else None
    if last is None or not any(start in n and last in n for n in nets):
        raise InvalidInput(f"{count} source addresses from {start} leave the target networks "
                           f"of '{source}'", "lower src_addrs")
    return start, count
