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
    netns: str
    data_addr: str
    data_prefix: int
    gateway: str | None
    mgmt_link: str
    mgmt_host_addr: str
    mgmt_ns_addr: str


@dataclass(frozen=True)
class LabPlan:
    name: str
    index: int

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

    def host(self, role: str) -> HostPlan:
        k = ROLES.index(role)
        base = f"{MGMT_SUPERNET}.{self.index}"
        data = {
            "client": (str(CLIENT_NET.network_address + 2), str(CLIENT_NET.network_address + 1)),
            "gw": (str(CLIENT_NET.network_address + 1), None),
            "venue": (str(VENUE_NET.network_address + 2), str(VENUE_NET.network_address + 1)),
        }[role]
        return HostPlan(
            role=role,
            netns=f"{self.ns_prefix}{role}",
            data_addr=data[0],
            data_prefix=16,
            gateway=data[1],
            mgmt_link=f"{self.mgmt_link_prefix}{role[0]}",
            mgmt_host_addr=f"{base}.{4 * k + 1}",
            mgmt_ns_addr=f"{base}.{4 * k + 2}",
        )

    @property
    def hosts(self) -> tuple[HostPlan, ...]:
        return tuple(self.host(r) for r in ROLES)

    @property
    def gw_venue_addr(self) -> str:
        """The gateway's address on the venue side."""
        return str(VENUE_NET.network_address + 1)


def plan_for(name: str, index: int) -> LabPlan:
    validate_name(name)
    if not 0 <= index < MAX_LABS:
        raise InvalidInput(f"lab index {index} out of range", f"use 0..{MAX_LABS - 1}")
    return LabPlan(name=name, index=index)


def free_index(used: set[int]) -> int:
    for i in range(MAX_LABS):
        if i not in used:
            return i
    raise InvalidInput("too many labs on this machine", "remove one with 'ctdrill lab down'")
