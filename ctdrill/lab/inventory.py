"""Render the lab's Ansible inventories (pure): one per transport.

Both are standard YAML inventories that ansible-playbook accepts as they are. The
`ctdrill_*` variables tell ctdrill how to reach each host for telemetry and which
host owns the kernel-wide knobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ctdrill.lab.topology import GATEWAY_TABLE, HostPlan, LabPlan

GROUP_OF_ROLE = {"client": "clients", "gw": "gateways", "venue": "venues"}
KERNEL_OWNER_HOST = "kernel"


def python_wrapper_path(plan: LabPlan, name: str) -> Path:
    return plan.state_dir / "bin" / f"python-{name}"


def render_python_wrapper(netns: str, python: str) -> str:
    """A script Ansible can use as interpreter: it runs python inside the namespace."""
    return f'#!/bin/sh\nexec ip netns exec {netns} {python} "$@"\n'


def _common_vars(plan: LabPlan) -> dict[str, Any]:
    return {
        "ctdrill_lab": plan.name,
        "ctdrill_target_networks": list(plan.target_networks),
        "ctdrill_gateway_table": GATEWAY_TABLE,
    }


def _kernel_owner(python: str) -> dict[str, Any]:
    return {
        KERNEL_OWNER_HOST: {
            "ansible_connection": "local",
            "ansible_python_interpreter": python,
            "ctdrill_transport": "local",
            "ctdrill_kernel_owner": True,
            "ctdrill_role": "kernel",
        }
    }


def _via(plan: LabPlan, host: HostPlan) -> dict[str, Any]:
    """`ctdrill_via`: the gateway a client's or venue's traffic crosses. A pool's loads
    and probes pair the i-th source with the i-th destination and judge each pair by it."""
    if host.role == "gw":
        return {}
    return {"ctdrill_via": plan.host("gw", host.lane).name}


def _add_host(children: dict[str, Any], host: HostPlan, hv: dict[str, Any]) -> None:
    group = children.setdefault(GROUP_OF_ROLE[host.role], {"hosts": {}})
    group["hosts"][host.name] = hv


def render_inventory(plan: LabPlan, transport: str, python: str, *,
                     key_file: Path | None = None,
                     known_hosts: Path | None = None) -> dict[str, Any]:
    """The inventory for one transport ('netns' or 'ssh')."""
    children: dict[str, Any] = {}
    for host in plan.hosts:
        hv: dict[str, Any] = {
            "ctdrill_role": host.role,
            "ctdrill_netns": host.netns,
            "ctdrill_addr": host.data_addr,
            "ctdrill_kernel_owner": False,
        } | _via(plan, host)
        if transport == "netns":
            hv |= {
                "ansible_connection": "local",
                "ansible_python_interpreter": str(python_wrapper_path(plan, host.name)),
                "ctdrill_transport": "netns",
            }
        elif transport == "ssh":
            assert key_file is not None and known_hosts is not None
            hv |= {
                "ansible_connection": "ssh",
                "ansible_host": host.mgmt_ns_addr,
                "ansible_port": 22,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(key_file),
                "ansible_ssh_common_args": (
                    f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
                ),
                "ansible_python_interpreter": "/usr/bin/python3",
                "ctdrill_transport": "ssh",
                "ctdrill_known_hosts": str(known_hosts),
            }
        else:
            raise ValueError(f"unknown transport {transport}")
        _add_host(children, host, hv)
    return {
        "all": {
            "vars": _common_vars(plan) | {"ctdrill_inventory_transport": transport},
            "children": {
                "lab": {"children": children},
                "kernel_owner": {"hosts": _kernel_owner(python)},
            },
        }
    }


def _ssh_vars(addr: str, port: int, key_file: Path, known_hosts: Path) -> dict[str, Any]:
    return {
        "ansible_connection": "ssh", "ansible_host": addr, "ansible_port": port,
        "ansible_user": "root", "ansible_ssh_private_key_file": str(key_file),
        "ansible_ssh_common_args": (f"-o UserKnownHostsFile={known_hosts} "
                                    "-o StrictHostKeyChecking=yes"),
        "ansible_python_interpreter": "/usr/bin/python3",
        "ctdrill_known_hosts": str(known_hosts),
    }


def render_opaque_inventory(plan: LabPlan, key_file: Path, known_hosts: Path
                            ) -> dict[str, Any]:
    """Every host reached only over SSH, as a user's remote fleet is: no namespace,
    transport, role or lab variables; the kernel owner is this machine's own sshd on
    loopback (group `kernel_owner`). Only what a real inventory has: SSH settings, the
    data-path address and the target networks."""
    children: dict[str, Any] = {}
    for host in plan.hosts:
        hv = _ssh_vars(host.mgmt_ns_addr, 22, key_file, known_hosts)
        hv["ctdrill_addr"] = host.data_addr
        hv |= _via(plan, host)
        _add_host(children, host, hv)
    kernel = _ssh_vars("127.0.0.1", plan.kernel_ssh_port, key_file, known_hosts)
    children["kernel_owner"] = {"hosts": {KERNEL_OWNER_HOST: kernel}}
    return {"all": {"vars": {"ctdrill_target_networks": list(plan.target_networks)},
                    "children": children}}


def dump_inventory(inventory: dict[str, Any]) -> str:
    header = "# Written by 'ctdrill lab up'; removed by 'ctdrill lab down'.\n"
    return header + yaml.safe_dump(inventory, sort_keys=False)
