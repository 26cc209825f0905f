"""From a SurgeLoad and an inventory to a checked plan: who sends what to whom.

Everything that can be refused is refused here, before any process starts or packet
leaves: unknown hosts, a destination or source range outside the declared target
networks, ASSURED mode without a destination host, unreadable profiles.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from ctdrill.errors import InvalidInput
from ctdrill.surge.flowspace import Dim, FlowSpace
from ctdrill.surge.guard import check_destination, source_range
from ctdrill.surge.profile import Points, load_profile
from ctdrill.surge.spec import ReplayShape, SurgeLoad
from ctdrill.targets.inventory import Inventory
from ctdrill.targets.target import Target

NETNS_DIR = Path("/run/netns")


def local_netns(target: Target) -> str | None:
    """The target's namespace if it is one on this machine (netns, or a lab host over ssh)."""
    if target.netns and (target.transport == "netns" or (NETNS_DIR / target.netns).exists()):
        return target.netns
    return None


def runs_here(target: Target) -> bool:
    return target.transport == "local" or local_netns(target) is not None


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


@dataclass(frozen=True)
class SurgePlan:
    spec: SurgeLoad
    source: str
    source_netns: str | None
    destination: ipaddress.IPv4Address
    destination_name: str
    destination_netns: str | None
    src_start: ipaddress.IPv4Address
    networks: tuple[str, ...]
    workers: int
    profile: Points | None = None
    pcap: Path | None = None
    remote: Target | None = None
    """Set for a split surge (split.py): the source host, where the senders run as
    shipped payloads through its connector."""
    venue: Target | None = None
    """The destination host of a split surge (its handshake partner and silence)."""

    @property
    def needs_venue(self) -> bool:
        """ASSURED flows are forged from the venue side too (its SYN-ACKs)."""
        return self.spec.mode == "assured" or self.spec.fill is not None

    def space(self) -> FlowSpace:
        s = self.spec
        d = Dim(0, 1) if s.protocol == "icmp" else Dim(s.dst_ports[0],
                                                       s.dst_ports[1] - s.dst_ports[0] + 1)
        return FlowSpace(Dim(int(self.src_start), s.src_addrs),
                         Dim(s.src_ports[0], s.src_ports[1] - s.src_ports[0] + 1), d)

    def fill_space(self) -> FlowSpace | None:
        f = self.spec.fill
        if f is None:
            return None
        s = self.spec
        return FlowSpace(Dim(int(self.src_start), s.src_addrs),
                         Dim(s.src_ports[0], s.src_ports[1] - s.src_ports[0] + 1),
                         Dim(f.dst_ports[0], f.dst_ports[1] - f.dst_ports[0] + 1))

    @property
    def src_last(self) -> ipaddress.IPv4Address:
        return self.src_start + (self.spec.src_addrs - 1)


def _destination(spec: SurgeLoad, inv: Inventory) -> tuple[str, str, Target | None]:
    """(address, display name, inventory host) of the destination."""
    if spec.destination in inv.hostnames():
        host = inv.target(spec.destination)
        if host.addr is None:
            raise InvalidInput(f"host {spec.destination} has no ctdrill_addr",
                               "set ctdrill_addr on it or give an IP address")
        return host.addr, spec.destination, host
    for name in inv.hostnames():  # an address: is it one of ours?
        host = inv.target(name)
        if host.addr == spec.destination:
            return spec.destination, name, host
    return spec.destination, spec.destination, None


def _resolve(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def plan_surge(spec: SurgeLoad, inv: Inventory, base_dir: Path | None = None) -> SurgePlan:
    """Check a surge against the inventory; raises InvalidInput for anything wrong.

    A surge between lab namespaces on this machine runs here (one worker forges both
    ends of each handshake); otherwise it is split (split.py): senders on the source
    host, the handshake partner on the destination host, each reached by its connector.
    """
    source = inv.target(spec.source)
    dest_addr, dest_name, dest_host = _destination(spec, inv)
    needs_venue = spec.mode == "assured" or spec.fill is not None
    dest_here = dest_host is not None and local_netns(dest_host) is not None
    split = not runs_here(source) or (needs_venue and dest_host is not None and not dest_here)
    destination = check_destination(dest_addr, source.networks, source.name)
    if source.addr is None:
        raise InvalidInput(f"surge source '{source.name}' has no ctdrill_addr",
                           "set ctdrill_addr (its address on the data path)")
    src_start, _ = source_range(source.addr, spec.src_addrs, source.networks, source.name)
    if split:
        _check_split(spec, source, dest_name, dest_host, needs_venue)
        dest_netns = plan_netns = None
    else:
        dest_netns = local_netns(dest_host) if dest_host is not None else None
        plan_netns = local_netns(source)
        _check_local(dest_name, dest_netns, plan_netns, needs_venue)
    profile, pcap = _inputs(spec, base_dir or Path.cwd())
    return SurgePlan(spec=spec, source=source.name, source_netns=plan_netns,
                     destination=destination, destination_name=dest_name,
                     destination_netns=dest_netns, src_start=src_start,
                     networks=source.networks, workers=spec.workers or default_workers(),
                     profile=profile, pcap=pcap, remote=source if split else None,
                     venue=dest_host if split else None)


def _check_split(spec: SurgeLoad, source: Target, dest_name: str, dest_host: Target | None,
                 needs_venue: bool) -> None:
    if isinstance(spec.shape, ReplayShape) and spec.shape.pcap:
        raise InvalidInput(f"pcap replay from '{source.name}' over SSH is not supported yet",
                           "use a profile replay, or run 'ctdrill surge' on that host")
    if needs_venue and dest_host is None:
        raise InvalidInput(f"ASSURED flows to {dest_name} need ctdrill's handshake partner "
                           "there", "name the destination by its inventory host")
    if needs_venue and dest_host is not None and dest_host.name == source.name:
        raise InvalidInput("source and destination are the same host",
                           "ASSURED flows must cross the gateway")


def _check_local(dest_name: str, dest_netns: str | None, plan_netns: str | None,
                 needs_venue: bool) -> None:
    if needs_venue and dest_netns is None:
        raise InvalidInput(f"ASSURED flows to {dest_name} need a handshake partner",
                           "name an inventory host as destination")
    if needs_venue and dest_netns == plan_netns:
        raise InvalidInput("source and destination are the same namespace",
                           "ASSURED flows must cross the gateway")


def _inputs(spec: SurgeLoad, base: Path) -> tuple[Points | None, Path | None]:
    profile = pcap = None
    if isinstance(spec.shape, ReplayShape):
        if spec.shape.profile is not None:
            profile = load_profile(_resolve(spec.shape.profile, base))
        elif spec.shape.pcap is not None:
            pcap = _resolve(spec.shape.pcap, base)
            if not pcap.is_file():
                raise InvalidInput(f"pcap {pcap} does not exist", "check replay.pcap")
    return profile, pcap
