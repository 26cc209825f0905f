"""The Docker lab itself: client reaches venue through gw, and gw's conntrack sees it."""

from __future__ import annotations

import subprocess

import pytest

from ctdrill.lab.docker import DockerLab
from ctdrill.lab.flows import send_udp_flows
from ctdrill.targets.inventory import Inventory

pytestmark = [pytest.mark.root, pytest.mark.docker]


def in_ns(netns: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True,
                          text=True, check=False)


def gw_count(lab: DockerLab) -> int:
    out = in_ns(lab.plan.host("gw").netns, "cat", "/proc/sys/net/netfilter/nf_conntrack_count")
    return int(out.stdout)


def test_namespaces_are_the_containers(docker_lab: DockerLab) -> None:
    for host in docker_lab.plan.hosts:
        attached = in_ns(host.netns, "readlink", "/proc/self/ns/net").stdout.strip()
        container = subprocess.run(["readlink", f"/proc/{docker_lab.pids[host.role]}/ns/net"],
                                   capture_output=True, text=True, check=True).stdout.strip()
        assert attached == container
    assert docker_lab.inventory.exists()


def test_client_reaches_venue_through_gw(docker_lab: DockerLab) -> None:
    client, gw, venue = docker_lab.plan.hosts
    ping = in_ns(client.netns, "ping", "-c1", "-W2", venue.data_addr)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    route = in_ns(client.netns, "ip", "route", "get", venue.data_addr).stdout
    assert f"via {gw.data_addr}" in route
    back = in_ns(venue.netns, "ip", "route", "get", client.data_addr).stdout
    assert f"via {docker_lab.plan.gw_venue_addr}" in back
    # the gw forwarded it, and tracked it
    tracked = in_ns(gw.netns, "conntrack", "-L", "-p", "icmp", "-s", client.data_addr,
                    "-d", venue.data_addr)
    assert f"src={client.data_addr} dst={venue.data_addr}" in tracked.stdout, tracked.stderr


def test_gw_conntrack_count_moves_with_flows(docker_lab: DockerLab) -> None:
    client, _, venue = docker_lab.plan.hosts
    before = gw_count(docker_lab)
    sent, errors = send_udp_flows(client.netns, venue.data_addr, 400,
                                  docker_lab.plan.target_networks, first_port=20000)
    assert (sent, errors) == (400, 0)
    after = gw_count(docker_lab)
    assert after >= before + 350, (before, after)  # a few older entries may expire meanwhile
    # nothing of the lab's traffic is tracked in the engine's own namespace
    engine = in_ns("ctd-dockerd", "cat", "/proc/sys/net/netfilter/nf_conntrack_count")
    assert engine.stdout.strip() == "0"


def test_inventory_is_the_standard_netns_inventory(docker_lab: DockerLab) -> None:
    inv = Inventory(docker_lab.inventory)
    assert sorted(inv.hostnames()) == ["client", "gw", "kernel", "venue"]
    for host in docker_lab.plan.hosts:
        target = inv.target(host.role)
        assert (target.transport, target.netns, target.addr) == (
            "netns", host.netns, host.data_addr)
        assert not target.kernel_owner
    kernel = inv.target("kernel")
    assert kernel.transport == "local" and kernel.kernel_owner
