from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from ctdrill.errors import InvalidInput
from ctdrill.lab.inventory import render_inventory, render_python_wrapper
from ctdrill.lab.topology import ROLES, free_index, plan_for, validate_name
from ctdrill.targets.target import target_from_hostvars


@pytest.mark.parametrize("bad", ["", "Default", "1lab", "toolongname", "a-b", "a b"])
def test_invalid_lab_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        validate_name(bad)


def test_names_fit_kernel_interface_limits_and_carry_the_prefix() -> None:
    plan = plan_for("abcdefgh", 255)
    for host in plan.hosts:
        assert len(host.mgmt_link) <= 15
        assert host.netns.startswith("ctd-abcdefgh-")
        assert host.mgmt_link.startswith("ctdm-abcdefgh-")


def test_management_addresses_are_distinct_per_lab_and_host() -> None:
    addrs = set()
    for index in (0, 1, 2):
        for host in plan_for("x", index).hosts:
            addrs |= {host.mgmt_host_addr, host.mgmt_ns_addr}
            a = ipaddress.ip_interface(f"{host.mgmt_host_addr}/30")
            assert ipaddress.ip_address(host.mgmt_ns_addr) in a.network
    assert len(addrs) == 18


def test_data_addresses_are_inside_the_declared_target_networks() -> None:
    plan = plan_for("x", 0)
    nets = [ipaddress.ip_network(n) for n in plan.target_networks]
    for host in plan.hosts:
        assert any(ipaddress.ip_address(host.data_addr) in n for n in nets)


def test_free_index_skips_used_ones() -> None:
    assert free_index(set()) == 0
    assert free_index({0, 1, 3}) == 2
    with pytest.raises(InvalidInput):
        free_index(set(range(256)))


def test_netns_inventory_yields_netns_targets_and_a_kernel_owner() -> None:
    plan = plan_for("x", 0)
    inv = render_inventory(plan, "netns", "/usr/bin/python3")
    children = inv["all"]["children"]
    gw = children["lab"]["children"]["gateways"]["hosts"]["gw"]
    target = target_from_hostvars("gw", gw)
    assert target.transport == "netns" and target.netns == "ctd-x-gw"
    assert not target.kernel_owner
    kernel = children["kernel_owner"]["hosts"]["kernel"]
    owner = target_from_hostvars("kernel", kernel)
    assert owner.transport == "local" and owner.kernel_owner
    # a YAML round trip keeps it a plain inventory
    assert yaml.safe_load(yaml.safe_dump(inv)) == inv


def test_ssh_inventory_keeps_host_key_checking_on() -> None:
    plan = plan_for("x", 3)
    inv = render_inventory(plan, "ssh", "/usr/bin/python3", key_file=Path("/k"),
                           known_hosts=Path("/kh"))
    hv = inv["all"]["children"]["lab"]["children"]["venues"]["hosts"]["venue"]
    assert "StrictHostKeyChecking=yes" in hv["ansible_ssh_common_args"]
    assert "UserKnownHostsFile=/kh" in hv["ansible_ssh_common_args"]
    t = target_from_hostvars("venue", hv)
    assert t.transport == "ssh" and t.host == plan.host("venue").mgmt_ns_addr
    assert t.known_hosts == "/kh" and t.key_file == "/k"


def test_python_wrapper_execs_inside_the_namespace() -> None:
    text = render_python_wrapper("ctd-x-gw", "/usr/bin/python3")
    assert 'exec ip netns exec ctd-x-gw /usr/bin/python3 "$@"' in text


def test_every_role_appears_in_the_inventory() -> None:
    inv = render_inventory(plan_for("x", 0), "netns", "p")
    hosts = {h for g in inv["all"]["children"]["lab"]["children"].values() for h in g["hosts"]}
    assert hosts == set(ROLES)


def test_target_transport_is_derived_from_ansible_connection() -> None:
    assert target_from_hostvars("h", {}).transport == "ssh"
    assert target_from_hostvars("h", {"ansible_connection": "local"}).transport == "local"
    t = target_from_hostvars("h", {"ansible_connection": "local", "ctdrill_netns": "n"})
    assert t.transport == "netns"
    with pytest.raises(ValueError):
        target_from_hostvars("h", {"ctdrill_transport": "carrier-pigeon"})
    with pytest.raises(ValueError):
        target_from_hostvars("h", {"ctdrill_transport": "netns"})
