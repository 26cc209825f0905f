"""The lab's address and name plan: pure data, computed from the lab's name and index.

Data networks live only inside the lab's own namespaces, so every lab can use the
same ones. Only the management links (initial namespace <-> each host, for sshd)
are visible in the initial namespace, so each lab gets its own /24 for them,
chosen by an index that `lab up` allocates.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ctdrill import PREFIX
from ctdrill.errors import InvalidInput

ROLES = ("client", "gw", "venue")
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,7}$")
DEFAULT_LAB = "default"
CLIENT_NET = ipaddress.ip_network("10.77.0.0/16")
VENUE_NET = ipaddress.ip_network("10.78.0.0/16")
MGMT_SUPERNET = "10.230"
MAX_LABS = 256
MAX_GATEWAYS = 32
"""A pool lab is 3 namespaces and 3 sshds per gateway; 32 is what a 2-core machine holds."""
MGMT_UPLINK_ADDR = 1
MGMT_HOST_BASE = 10
KERNEL_SSH_PORT_BASE = 22600
"""The opaque lab's kernel owner: an sshd in the initial namespace on 127.0.0.1:base+index."""
GATEWAY_TABLE = f"{PREFIX}_lab"


def run_dir() -> Path:
    """Where labs keep state; /run is tmpfs, so it vanishes with the namespaces at reboot."""
    return Path(os.environ.get("CTDRILL_RUN_DIR", "/run/ctdrill"))


def validate_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInput(f"invalid lab name '{name}'",
                           "use 1-8 lowercase letters or digits, starting with a letter")
    return name


@dataclass(frozen=True)
class HostPlan:
    """One lab host: its namespace, data address and management link."""

    role: str
    name: str
    """The inventory host name: the role in a one-gateway lab, role + lane (gw03) in a pool."""
    lane: int
    """0 in a one-gateway lab; 1..N in a pool (client03 -> gw03 -> venue03)."""
    netns: str
    data_addr: str
    data_prefix: int
    gateway: str | None
    mgmt_link: str
    mgmt_host_addr: str
    mgmt_ns_addr: str


@dataclass(frozen=True)
class LabPlan:
    """A lab: one client -> gw -> venue path, or (gateways > 1) a pool of N independent
    lanes client<i> -> gw<i> -> venue<i>, each with the one-gateway semantics the surge
    and probe have, and the same data addresses (the lanes never meet). A pool's
    management plane is one bridge in a `mgmt` namespace with a single uplink into the
    initial namespace, so it needs one interface name there, not 3N."""

    name: str
    index: int
    gateways: int = 1

    @property
    def is_pool(self) -> bool:
        return self.gateways > 1

    @property
    def mgmt_netns(self) -> str:
        """The pool's management switch (a bridge); unused by a one-gateway lab."""
        return f"{self.ns_prefix}mgmt"

    @property
    def mgmt_uplink(self) -> str:
        return f"{self.mgmt_link_prefix}m"

    @property
    def mgmt_uplink_addr(self) -> str:
        return f"{MGMT_SUPERNET}.{self.index}.{MGMT_UPLINK_ADDR}"

    @property
    def ns_prefix(self) -> str:
        return f"{PREFIX}-{self.name}-"

    @property
    def mgmt_link_prefix(self) -> str:
        return f"{PREFIX}m-{self.name}-"

    @property
    def state_dir(self) -> Path:
        return run_dir() / "labs" / self.name

    @property
    def inventory_path(self) -> Path:
        return self.state_dir / "inventory.yml"

    @property
    def ssh_inventory_path(self) -> Path:
        return self.state_dir / "inventory-ssh.yml"

    @property
    def opaque_inventory_path(self) -> Path:
        """Every host over SSH, no namespace or lab hints: a remote fleet's inventory."""
        return self.state_dir / "inventory-opaque.yml"

    @property
    def kernel_ssh_port(self) -> int:
        return KERNEL_SSH_PORT_BASE + self.index

    @property
    def target_networks(self) -> tuple[str, ...]:
        return (str(CLIENT_NET), str(VENUE_NET))

    def host(self, role: str, lane: int = 0) -> HostPlan:
        """A host by role (and lane in a pool; lane 0 there means lane 1)."""
        if self.is_pool:
            return self._pool_host(role, max(1, lane))
        k = ROLES.index(role)
        base = f"{MGMT_SUPERNET}.{self.index}"
        data = _DATA[role]
        return HostPlan(
            role=role, name=role, lane=0,
            netns=f"{self.ns_prefix}{role}",
            data_addr=data[0],
            data_prefix=16,
            gateway=data[1],
            mgmt_link=f"{self.mgmt_link_prefix}{role[0]}",
            mgmt_host_addr=f"{base}.{4 * k + 1}",
            mgmt_ns_addr=f"{base}.{4 * k + 2}",
        )

    def _pool_host(self, role: str, lane: int) -> HostPlan:
        k = (lane - 1) * len(ROLES) + ROLES.index(role)
        name = f"{role}{lane:02d}"
        data = _DATA[role]
        return HostPlan(
            role=role, name=name, lane=lane, netns=f"{self.ns_prefix}{name}",
            data_addr=data[0], data_prefix=16, gateway=data[1],
            mgmt_link="", mgmt_host_addr=self.mgmt_uplink_addr,
            mgmt_ns_addr=f"{MGMT_SUPERNET}.{self.index}.{MGMT_HOST_BASE + k}")

    @property
    def hosts(self) -> tuple[HostPlan, ...]:
        if self.is_pool:
            return tuple(self._pool_host(r, lane) for lane in range(1, self.gateways + 1)
                         for r in ROLES)
        return tuple(self.host(r) for r in ROLES)

    def lanes(self) -> tuple[tuple[HostPlan, HostPlan, HostPlan], ...]:
        """(client, gw, venue) per lane: one in a one-gateway lab."""
        if not self.is_pool:
            return ((self.host("client"), self.host("gw"), self.host("venue")),)
        return tuple((self._pool_host("client", i), self._pool_host("gw", i),
                      self._pool_host("venue", i)) for i in range(1, self.gateways + 1))

    @property
    def gw_venue_addr(self) -> str:
        """The gateway's address on the venue side."""
        return str(VENUE_NET.network_address + 1)


_DATA: dict[str, tuple[str, str | None]] = {
    "client": (str(CLIENT_NET.network_address + 2), str(CLIENT_NET.network_address + 1)),
    "gw": (str(CLIENT_NET.network_address + 1), None),
    "venue": (str(VENUE_NET.network_address + 2), str(VENUE_NET.network_address + 1)),
}
"""(data address, default route) by role: the same in every lane, which never meet."""


def plan_for(name: str, index: int, gateways: int = 1) -> LabPlan:
    validate_name(name)
    if not 0 <= index < MAX_LABS:
        raise InvalidInput(f"lab index {index} out of range", f"use 0..{MAX_LABS - 1}")
    if not 1 <= gateways <= MAX_GATEWAYS:
        raise InvalidInput(f"a lab has 1 to {MAX_GATEWAYS} gateways, not {gateways}",
                           f"use --gateways 1..{MAX_GATEWAYS}")
    return LabPlan(name=name, index=index, gateways=gateways)


def free_index(used: set[int]) -> int:
    for i in range(MAX_LABS):
        if i not in used:
            return i
    raise InvalidInput("too many labs on this machine", "remove one with 'ctdrill lab down'")
