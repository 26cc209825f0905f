"""Pure checks of the Docker lab (no root, no engine): names, and the compose file
agrees with the lab plan the inventory is rendered from."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from ctdrill.errors import InvalidInput
from ctdrill.lab import docker
from ctdrill.lab.topology import CLIENT_NET, VENUE_NET


def test_lab_name_is_the_project_without_the_prefix() -> None:
    assert docker.lab_name("ctddocker") == "docker"
    assert docker.lab_plan("ctddocker").host("gw").netns == "ctd-docker-gw"
    with pytest.raises(InvalidInput):
        docker.lab_name("ctd-Not_Valid")


def test_compose_file_matches_the_lab_plan() -> None:
    compose = yaml.safe_load(docker.COMPOSE_FILE.read_text())
    plan = docker.lab_plan(docker.DEFAULT_PROJECT)
    services = compose["services"]
    assert set(services) == {"client", "gw", "venue"}
    addrs = {role: {net: v["ipv4_address"] for net, v in svc["networks"].items()}
             for role, svc in services.items()}
    assert addrs["client"] == {"ctdclient": plan.host("client").data_addr}
    assert addrs["venue"] == {"ctdvenue": plan.host("venue").data_addr}
    assert addrs["gw"] == {"ctdclient": plan.host("gw").data_addr,
                           "ctdvenue": plan.gw_venue_addr}
    assert str(services["gw"]["sysctls"]["net.ipv4.ip_forward"]) == "1"
    for name, lab_net in (("ctdclient", CLIENT_NET), ("ctdvenue", VENUE_NET)):
        subnet = ipaddress.ip_network(compose["networks"][name]["ipam"]["config"][0]["subnet"])
        assert subnet.subnet_of(lab_net)  # type: ignore[arg-type]
    for svc in services.values():
        assert svc["init"] is True and "privileged" not in svc
