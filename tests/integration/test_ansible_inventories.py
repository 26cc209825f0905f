"""The inventories `lab up` writes work with real Ansible, and each host is its own netns."""

from __future__ import annotations

import subprocess

import pytest

from ctdrill.ansible.runner import run_module
from ctdrill.lab.manager import LabUp

pytestmark = pytest.mark.root


def netns_inode(netns: str | None) -> str:
    argv = ["stat", "-L", "-c", "%i", "/proc/self/ns/net"]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("which", ["netns", "ssh"])
def test_ansible_reaches_each_host_inside_its_namespace(lab: LabUp, which: str) -> None:
    path = lab.plan.inventory_path if which == "netns" else lab.plan.ssh_inventory_path
    result = run_module(path, "lab:kernel_owner", "ansible.builtin.command",
                        "stat -L -c %i /proc/self/ns/net")
    assert result.ok, result
    seen = {host: rs[0].result["stdout"].strip() for host, rs in result.hosts.items()}
    expected = {role: netns_inode(lab.plan.host(role).netns) for role in ("client", "gw", "venue")}
    expected["kernel"] = netns_inode(None)
    assert seen == expected


def test_ssh_inventory_refuses_an_unpinned_host_key(lab: LabUp, tmp_path: object) -> None:
    text = lab.plan.ssh_inventory_path.read_text()
    empty = lab.plan.state_dir / "empty_known_hosts"
    empty.write_text("")
    bad = lab.plan.state_dir / "inventory-badkeys.yml"
    bad.write_text(text.replace(str(lab.plan.state_dir / "known_hosts"), str(empty)))
    result = run_module(bad, "gw", "ansible.builtin.ping")
    assert not result.ok
    assert "Host key verification failed" in str(result.hosts["gw"][0].result)
