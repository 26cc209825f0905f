"""Rolling waves on a four-gateway lab (`ctdrill lab up --gateways 4`: lanes
client0N -> gw0N -> venue0N, the gateways in group `gateways`), with real Ansible plays
and real telemetry.

gw02 carries real traffic before the drill (UDP flows from client02 to venue02, kept in
its table by a long UDP timeout), so a guard ceiling on `count` holds on gw01 and trips
on gw02 as soon as the second wave is in place: the rollout must stop there (no wave
after it, gw03 and gw04 never changed), revert and verify every host, and exit 3."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctdrill.connect.netns import NetnsConnector
from ctdrill.lab.flows import udp_flows
from ctdrill.lab.manager import LabUp
from tests.integration.conftest import POOL_GATEWAYS
from tests.integration.drillrun import ctdrill, records, write_spec
from tests.integration.helpers import flush_conntrack, ns_count, ns_read

pytestmark = pytest.mark.root

GATEWAYS = POOL_GATEWAYS
GWS = [f"gw{i:02d}" for i in range(1, GATEWAYS + 1)]
FLOWS = 200
CEILING = 50
UDP_TIMEOUT = "/proc/sys/net/netfilter/nf_conntrack_udp_timeout"
CHANGED = {"net.netfilter.nf_conntrack_udp_timeout_stream",
           "net.netfilter.nf_conntrack_tcp_timeout_established"}
SPEC = f"""
drill: waves-trip
targets: {{hosts: gateways}}
changes:
  - timeouts: {{udp_stream: 61, tcp_established: 3000}}
rollout: {{serial: {{serial}}, pause_s: 0.5}}
observe: {{hz: 20, duration_s: 2}}
guards:
  ceilings: [{{hosts: gateways, metric: count, above: {CEILING}}}]
revert: {{ttl_s: 120}}
"""


@pytest.fixture
def busy_gw02(pool: LabUp) -> Iterator[LabUp]:
    """gw02 holding FLOWS unreplied UDP entries for the whole test; put back after."""
    client, gw, venue = pool.plan.lanes()[1]
    assert gw.name == "gw02"
    original = ns_read(gw.netns, UDP_TIMEOUT)
    in_ns(gw.netns, "sh", "-c", f"echo 600 > {UDP_TIMEOUT}")
    try:
        flush_conntrack(gw.netns)
        sent = udp_flows(NetnsConnector(client.netns), venue.data_addr, FLOWS,
                         pool.plan.target_networks)
        assert sent == (FLOWS, 0)
        assert ns_count(gw.netns) >= FLOWS > CEILING
        yield pool
    finally:
        in_ns(gw.netns, "sh", "-c", f"echo {original} > {UDP_TIMEOUT}")
        flush_conntrack(gw.netns)


def in_ns(netns: str, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True,
                          text=True, check=True, timeout=60).stdout


def gateway_state(lab: LabUp) -> dict[str, str]:
    """Every gateway's netfilter sysctls (minus the live count) and stateless ruleset,
    read from the kernel, by host name."""
    out = {}
    for host in lab.plan.hosts:
        if host.name in GWS:
            out[host.name] = in_ns(host.netns, "sh", "-c",
                                   "grep -r . /proc/sys/net/netfilter | grep -v _count; "
                                   "nft -s list ruleset")
    return out


def run(lab: LabUp, tmp_path: Path, inventory: Path, serial: str) -> tuple[int, dict[str, Any]]:
    spec = write_spec(tmp_path / "waves.yaml", SPEC.replace("{serial}", serial))
    res = ctdrill("run", str(spec), "-i", str(inventory), "--json",
                  runs_dir=tmp_path / "runs", timeout=300)
    assert res.stdout, res.stderr[-2000:]
    return res.returncode, json.loads(res.stdout)


def of(recs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in recs if r["type"] == kind]


@pytest.mark.parametrize("transport", ["netns", "ssh"])
def test_a_guard_tripped_mid_rollout_stops_it_and_reverts_every_wave(
        busy_gw02: LabUp, tmp_path: Path, transport: str) -> None:
    lab = busy_gw02
    inventory = lab.plan.inventory_path if transport == "netns" else lab.plan.ssh_inventory_path
    before = gateway_state(lab)
    rc, out = run(lab, tmp_path, inventory, "1")
    assert rc == 3, out["reason"]
    assert out["reason"].startswith("guard: count on gw02 is ")
    assert out["reason"].endswith("> 50 (rollout stopped after wave 2 of 4)")
    assert out["rollout"]["waves"] == [[h] for h in GWS]
    assert out["rollout"]["applied"] == [0, 1]
    assert (out["rollout"]["stopped"]["wave"], out["rollout"]["stopped"]["host"]) == (1, "gw02")

    recs = records(Path(out["journal"]))
    assert [r["index"] for r in of(recs, "wave_start")] == [0, 1]
    assert [r["index"] for r in of(recs, "wave_applied")] == [0, 1]
    checks = of(recs, "wave_check")
    assert [(c["index"], c["passed"], c["hosts"]) for c in checks] == [
        (0, True, ["gw01"]), (1, False, ["gw01", "gw02"])]
    assert checks[0]["peaks"]["gw01"]["count"] <= CEILING
    assert (checks[1]["host"], checks[1]["guard"]) == ("gw02", f"ceiling count > {CEILING}")
    assert checks[1]["peaks"]["gw02"]["count"] > CEILING
    # the waves after the trip were never applied: only gw01 and gw02 had a key written
    written = {(r["host"], r["name"]) for r in of(recs, "outcome") if r.get("name")}
    assert written == {(h, k) for h in ("gw01", "gw02") for k in CHANGED}
    assert not of(recs, "samples") and not of(recs, "applied_check")

    # every host reverted and verified; gw03 and gw04 had nothing to put back
    reverts = {r["host"]: r for r in of(recs, "revert")}
    assert sorted(reverts) == GWS and all(r["verified"] for r in reverts.values())
    for host in ("gw01", "gw02"):
        assert set(reverts[host]["restored"]) == CHANGED
    assert reverts["gw03"]["restored"] == {} and reverts["gw04"]["restored"] == {}
    assert all(out["revert"][h]["verified"] for h in GWS)
    assert gateway_state(lab) == before
    assert of(recs, "end")[0]["exit_code"] == 3


def test_a_rollout_whose_guards_hold_applies_every_wave_then_observes(
        pool: LabUp, tmp_path: Path) -> None:
    before = gateway_state(pool)
    rc, out = run(pool, tmp_path, pool.plan.inventory_path, '"50%"')
    assert rc == 0, out["reason"]
    assert out["rollout"] == {"waves": [GWS[:2], GWS[2:]], "applied": [0, 1],
                              "stopped": None}
    recs = records(Path(out["journal"]))
    assert [c["passed"] for c in of(recs, "wave_check")] == [True, True]
    written = {r["host"] for r in of(recs, "outcome") if r.get("name")}
    assert written == set(GWS)
    assert of(recs, "applied_check") and of(recs, "samples")
    assert all(out["revert"][h]["verified"] for h in GWS)
    assert gateway_state(pool) == before
