"""A small, honest flow source for the foundation: N new UDP 5-tuples from a lab host.

One datagram per destination port from one socket, so every packet is a new flow
through the gateway. The real load generator (scapy templates, batch sender) is the
surge package; this one exists so the lab and telemetry can be proven on their own.
"""

from __future__ import annotations

import ipaddress

from ctdrill.connect import Connector
from ctdrill.connect.netns import NetnsConnector
from ctdrill.errors import InvalidInput

_SENDER = """
import socket, sys
dst, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = errors = 0
for i in range(count):
    try:
        s.sendto(b"ctdrill", (dst, first + i % (65536 - first)))
        sent += 1
    except OSError:
        errors += 1
print(sent, errors)
"""


def send_udp_flows(netns: str, dst: str, count: int, allowed: tuple[str, ...],
                   first_port: int = 1024) -> tuple[int, int]:
    """Send `count` single-datagram UDP flows from a namespace on this machine to `dst`."""
    return udp_flows(NetnsConnector(netns), dst, count, allowed, first_port)


def udp_flows(conn: Connector, dst: str, count: int, allowed: tuple[str, ...],
              first_port: int = 1024) -> tuple[int, int]:
    """Send `count` single-datagram UDP flows from the connector's host to `dst`;
    return (sent, errors). The sender's source is shipped in the command."""
    address = ipaddress.ip_address(dst)
    if not any(address in ipaddress.ip_network(n) for n in allowed):
        raise InvalidInput(f"destination {dst} is outside the target networks",
                           f"use an address in {', '.join(allowed)}")
    if count > 65536 - first_port:
        raise InvalidInput("too many flows for one source port range",
                           f"use at most {65536 - first_port}")
    out = conn.run([conn.python, "-c", _SENDER, dst, str(first_port), str(count)])
    sent, errors = out.stdout.split()
    return int(sent), int(errors)
