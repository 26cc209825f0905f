"""A pool lab's plan (pure): lane names, distinct management addresses, inventories."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctdrill.errors import InvalidInput
from ctdrill.lab.inventory import render_inventory, render_opaque_inventory
from ctdrill.lab.topology import MAX_GATEWAYS, plan_for


def test_one_gateway_lab_keeps_its_names() -> None:
    plan = plan_for("default", 2)
    assert [h.name for h in plan.hosts] == ["client", "gw", "venue"]
    assert plan.host("gw").mgmt_link == "ctdm-default-g"
    assert len(plan.lanes()) == 1


def test_pool_has_one_lane_per_gateway_with_unique_management_addresses() -> None:
    plan = plan_for("default", 2, MAX_GATEWAYS)
    names = [h.name for h in plan.hosts]
    assert names[:3] == ["client01", "gw01", "venue01"] and names[-1] == "venue32"
    mgmt = [h.mgmt_ns_addr for h in plan.hosts]
    assert len(set(mgmt)) == len(mgmt) == 3 * MAX_GATEWAYS
    assert plan.mgmt_uplink_addr not in mgmt
    assert all(len(n) <= 15 for n in (plan.mgmt_uplink,))  # an interface name
    assert [lane[1].name for lane in plan.lanes()][:2] == ["gw01", "gw02"]


@pytest.mark.parametrize("n", [0, MAX_GATEWAYS + 1])
def test_pool_size_is_bounded(n: int) -> None:
    with pytest.raises(InvalidInput, match="gateways"):
        plan_for("default", 0, n)


def test_pool_inventories_group_gateways_and_name_each_lane_gateway() -> None:
    plan = plan_for("lab", 1, 4)
    for inv in (render_inventory(plan, "netns", "/usr/bin/python3"),
                render_opaque_inventory(plan, Path("/k"), Path("/kh"))):
        children = inv["all"]["children"]
        groups = children["lab"]["children"] if "lab" in children else children
        assert sorted(groups["gateways"]["hosts"]) == ["gw01", "gw02", "gw03", "gw04"]
        assert groups["clients"]["hosts"]["client03"]["ctdrill_via"] == "gw03"
        assert groups["venues"]["hosts"]["venue04"]["ctdrill_via"] == "gw04"
        assert "ctdrill_via" not in groups["gateways"]["hosts"]["gw01"]
