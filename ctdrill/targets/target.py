"""A target host and how to reach it (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Transport = Literal["netns", "ssh", "local"]


@dataclass(frozen=True)
class Target:
    """One inventory host as ctdrill sees it.

    `transport` decides how every access reaches the host: `connect.connector_for`
    maps it to one connector. `netns` targets are namespaces on this machine (`netns` is
    also set for lab hosts reached over SSH, so local helpers such as the surge's
    plumbing can find them); `ssh` targets are reached with paramiko (host key checking
    on); `local` is this machine's initial namespace.
    `kernel_owner` marks the host whose initial namespace owns the kernel-wide knobs
    (nf_conntrack_max, nf_conntrack_buckets).
    """

    name: str
    transport: Transport
    netns: str | None = None
    host: str | None = None
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    known_hosts: str | None = None
    python: str = "python3"
    kernel_owner: bool = False
    role: str | None = None
    groups: tuple[str, ...] = ()
    addr: str | None = None
    networks: tuple[str, ...] = ()
    via: str | None = None
    """The gateway this host's data-path traffic crosses (`ctdrill_via`), for pools."""

    def describe(self) -> str:
        if self.transport == "ssh":
            return f"ssh {self.user}@{self.host}:{self.port}"
        if self.transport == "netns":
            return f"netns {self.netns}"
        return "local (initial namespace)"


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def target_from_hostvars(name: str, hv: dict[str, Any], groups: tuple[str, ...] = ()) -> Target:
    """Derive a Target from one host's Ansible variables.

    Explicit `ctdrill_transport` wins; otherwise ansible_connection decides (local ->
    netns when ctdrill_netns is set, else local; anything else -> ssh).
    """
    connection = str(hv.get("ansible_connection", "ssh"))
    transport: Any = hv.get("ctdrill_transport")
    if transport is None:
        if connection == "local":
            transport = "netns" if hv.get("ctdrill_netns") else "local"
        else:
            transport = "ssh"
    if transport not in ("netns", "ssh", "local"):
        raise ValueError(f"host '{name}': ctdrill_transport must be netns, ssh or local, "
                         f"not {transport!r}")
    if transport == "netns" and not hv.get("ctdrill_netns"):
        raise ValueError(f"host '{name}': transport netns needs ctdrill_netns")
    interpreter = hv.get("ansible_python_interpreter")
    python = "python3"
    if transport == "ssh" and interpreter and " " not in str(interpreter):
        python = str(interpreter)
    checked: Transport = transport
    return Target(
        name=name,
        transport=checked,
        netns=_opt(hv.get("ctdrill_netns")),
        host=_opt(hv.get("ansible_host")) or name,
        port=int(hv.get("ansible_port", 22)),
        user=str(hv.get("ansible_user", "root")),
        key_file=_opt(hv.get("ansible_ssh_private_key_file")),
        known_hosts=_opt(hv.get("ctdrill_known_hosts")),
        python=python,
        kernel_owner=bool(hv.get("ctdrill_kernel_owner",
                                 transport == "local" or "kernel_owner" in groups)),
        role=_opt(hv.get("ctdrill_role")),
        groups=groups,
        addr=_opt(hv.get("ctdrill_addr")),
        networks=tuple(str(n) for n in hv.get("ctdrill_target_networks", []) or []),
        via=_opt(hv.get("ctdrill_via")),
    )
