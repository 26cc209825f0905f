"""A pool of gateways on the real kernel: `lab up --gateways N`, lanes that never meet,
every shipped pool drill (bypass canary judged canary vs control), over netns and over
SSH only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ctdrill.errors import InvalidInput
from ctdrill.lab import manager
from ctdrill.lab.flows import send_udp_flows
from ctdrill.lab.manager import LabUp
from tests.integration.conftest import POOL_GATEWAYS
from tests.integration.drillrun import ctdrill, host_state

pytestmark = pytest.mark.root
POOL_DRILLS = Path(__file__).resolve().parents[2] / "drills" / "pool"
GATEWAYS = POOL_GATEWAYS


def udp_entries(netns: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", netns, "conntrack", "-L", "-p", "udp"],
                         capture_output=True, text=True, check=False).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def flush(lab: LabUp) -> None:
    for _, gw, _ in lab.plan.lanes():
        subprocess.run(["ip", "netns", "exec", gw.netns, "conntrack", "-F"],
                       capture_output=True, check=False)


def test_the_pool_is_healthy_and_its_lanes_never_meet(pool: LabUp) -> None:
    assert all(c.ok for c in manager.status(pool.plan)), manager.status(pool.plan)
    lanes = pool.plan.lanes()
    assert [gw.name for _, gw, _ in lanes] == [f"gw{i:02d}" for i in range(1, GATEWAYS + 1)]
    flush(pool)
    client, _, venue = lanes[1]
    sent, _ = send_udp_flows(client.netns, venue.data_addr, 300, pool.plan.target_networks)
    counts = {gw.name: udp_entries(gw.netns) for _, gw, _ in lanes}
    assert sent == 300
    assert counts["gw02"] >= 300, counts  # its own table holds the lane's flows
    assert all(n == 0 for g, n in counts.items() if g != "gw02"), counts


def test_a_second_lab_up_keeps_the_pool_and_refuses_another_size(pool: LabUp) -> None:
    again = manager.up(pool.plan.name, ssh=True, gateways=GATEWAYS)
    assert not again.created and again.plan.gateways == GATEWAYS
    with pytest.raises(InvalidInput, match=f"up with {GATEWAYS} gateway"):
        manager.up(pool.plan.name, ssh=True, gateways=2)
    assert all(c.ok for c in manager.status(pool.plan))  # left as it was


@pytest.mark.parametrize(("name", "inventory"), [
    ("bypass-canary", "netns"), ("rollback", "netns"), ("table-pressure-replay", "netns"),
    ("capacity-step", "netns"), ("bypass-canary", "opaque")])
def test_pool_drill_passes_and_leaves_every_host_as_it_was(
        pool: LabUp, name: str, inventory: str, tmp_path: Path) -> None:
    inv = {"netns": pool.plan.inventory_path,
           "opaque": pool.plan.opaque_inventory_path}[inventory]
    flush(pool)
    before = host_state(pool)
    result = ctdrill("run", str(POOL_DRILLS / f"{name}.yaml"), "-i", str(inv), "--json",
                     runs_dir=tmp_path / "runs", timeout=400)
    out = json.loads(result.stdout) if result.stdout.startswith("{") else {}
    failed = [v for v in out.get("expectations", []) if not v["passed"]]
    assert result.returncode == 0, json.dumps(failed or out, indent=1)[:3000] + result.stderr
    assert out["revert"] and all(r["verified"] for r in out["revert"].values())
    assert host_state(pool) == before
    if name == "bypass-canary":
        names = {v["name"] for v in out["expectations"] if v["passed"]}
        assert "canary tails are a fraction of control's" in names
        assert sorted(out["revert"]) == ["gw04", "kernel"]  # the seeded 25 % canary pool
