"""Where frames go on the wire: the interface and next-hop MAC towards an address.

An AF_PACKET sender bypasses the host's IP stack, so it must write the Ethernet header
itself: the route gives the interface and next hop, the neighbour table its MAC. When
the table has no entry, one ARP request is sent from a packet socket in the namespace:
not a ping, which would put a conntrack entry on the very gateway being counted.
"""

from __future__ import annotations

import json
from typing import Any

from ctdrill.connect import Connector, namespace_connector
from ctdrill.errors import EnvironmentProblem
from ctdrill.surge.templates import Link

USABLE = {"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP"}
ARP_PROBE = r"""
import socket, sys, time
dev, mac, src, dst = sys.argv[1:5]
hw = bytes.fromhex(mac.replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((dev, 0))
s.settimeout(0.2)
req = (b"\xff" * 6 + hw + b"\x08\x06" + bytes.fromhex("0001080006040001") + hw
       + socket.inet_aton(src) + b"\x00" * 6 + socket.inet_aton(dst))
end = time.monotonic() + 1.5
while time.monotonic() < end:
    s.send(req)
    stop = time.monotonic() + 0.3
    while time.monotonic() < stop:
        try:
            f = s.recv(128)
        except TimeoutError:
            break
        if len(f) >= 42 and f[20:22] == b"\x00\x02" and f[28:32] == socket.inet_aton(dst):
            print(f[22:28].hex(":"))
            sys.exit(0)
sys.exit(1)
"""


def _ip_json(conn: Connector, args: list[str]) -> list[dict[str, Any]]:
    out = conn.run(["ip", "-j", *args], check=False)
    if not out.ok:
        detail = (out.stderr or out.stdout).strip().splitlines()
        raise EnvironmentProblem(f"'ip {' '.join(args)}' failed on {conn.where}",
                                 detail[-1] if detail else "is the lab up?")
    try:
        data = json.loads(out.stdout or "[]")
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def _neighbour_mac(conn: Connector, addr: str, dev: str) -> str | None:
    for entry in _ip_json(conn, ["neigh", "show", "to", addr, "dev", dev]):
        states = set(entry.get("state", []))
        if entry.get("lladdr") and states & USABLE:
            return str(entry["lladdr"])
    return None


def link_towards(netns: str | None, destination: str) -> Link:
    """The interface, our MAC and the next hop's MAC for frames to `destination`, in a
    namespace on this machine (None: the initial one)."""
    return link_via(namespace_connector(netns), destination)


def link_via(conn: Connector, destination: str) -> Link:
    """The same, on whatever host `conn` reaches (an SSH host: the split surge)."""
    where = conn.where
    routes = _ip_json(conn, ["route", "get", destination])
    if not routes or "dev" not in routes[0]:
        raise EnvironmentProblem(f"no route to {destination} on {where}",
                                 "check the lab with 'ctdrill lab status'")
    route = routes[0]
    dev = str(route["dev"])
    hop = str(route.get("gateway", destination))
    links = _ip_json(conn, ["link", "show", "dev", dev])
    if not links or not links[0].get("address"):
        raise EnvironmentProblem(f"interface {dev} on {where} has no MAC",
                                 "the surge needs an Ethernet interface")
    mac = _neighbour_mac(conn, hop, dev)
    own = str(links[0]["address"])
    if mac is None and route.get("prefsrc"):
        out = conn.run([conn.python, "-c", ARP_PROBE, dev, own, str(route["prefsrc"]), hop],
                       check=False)
        mac = out.stdout.strip() or None
    if mac is None:
        raise EnvironmentProblem(f"next hop {hop} via {dev} does not answer ARP",
                                 "check that the gateway is up ('ctdrill lab status')")
    return Link(ifname=dev, src_mac=own, dst_mac=mac)
