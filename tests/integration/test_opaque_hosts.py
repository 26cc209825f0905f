"""Real hosts reached only over SSH: the lab's opaque inventory (no namespace, transport,
role or lab variables; the kernel owner is this machine's sshd on loopback). Every
process a drill or surge runs on a host goes there through paramiko as a shipped
payload; ASSURED flows are real handshakes between the client and the venue hosts."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctdrill.connect.payload import spawn_module
from ctdrill.connect.ssh import SshConnector
from ctdrill.lab import manager
from ctdrill.lab.manager import LabUp
from ctdrill.surge.flowspace import Dim, FlowSpace
from ctdrill.surge.launch import open_surge
from ctdrill.surge.plan import plan_surge
from ctdrill.surge.spec import SurgeLoad
from ctdrill.surge.templates import Link, build_template
from ctdrill.system.knobs import global_knobs
from ctdrill.targets.inventory import Inventory
from tests.integration.conftest import unique_lab_name
from tests.integration.drillrun import ctdrill, host_state, reap_group, spawn
from tests.integration.helpers import flush_conntrack
from tests.waiting import wait_until

pytestmark = pytest.mark.root
DRILLS = Path(__file__).resolve().parents[2] / "drills"
PAYLOAD = re.compile(rb"ctdrill|importlib\.abc")


@pytest.fixture(scope="module")
def opaque() -> Iterator[LabUp]:
    name = unique_lab_name("op")
    try:
        yield manager.up(name, ssh=True)
    finally:
        manager.down(name)


def inventory(lab: LabUp) -> Path:
    text = lab.plan.opaque_inventory_path.read_text()
    assert "ctdrill_netns" not in text and "ctdrill_transport" not in text
    assert "ctdrill_lab" not in text and "ctdrill_role" not in text
    return lab.plan.opaque_inventory_path


def gw(lab: LabUp) -> str:
    return lab.plan.host("gw").netns


def conntrack(netns: str, *args: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "conntrack", "-L", *args],
                          capture_output=True, text=True, check=False).stdout


def gw_count(lab: LabUp) -> int:
    return int(subprocess.run(["ip", "netns", "exec", gw(lab), "cat",
                               "/proc/sys/net/netfilter/nf_conntrack_count"],
                              capture_output=True, text=True, check=True).stdout)


def surge_tables(lab: LabUp) -> list[str]:
    found = []
    for role in ("client", "venue"):
        out = subprocess.run(["ip", "netns", "exec", lab.plan.host(role).netns, "nft", "list",
                              "tables"], capture_output=True, text=True, check=True).stdout
        found += [f"{role}:{t}" for t in re.findall(r"ctd_surge\w*", out)]
    return found


def payload_pids(lab: LabUp) -> list[int]:
    """Processes in the client and venue namespaces running a shipped payload."""
    pids = []
    for role in ("client", "venue"):
        out = subprocess.run(["ip", "netns", "pids", lab.plan.host(role).netns],
                             capture_output=True, text=True, check=True).stdout
        for pid in map(int, out.split()):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            shipped = cmd.startswith(b"python3\0-u\0-c") or b"/python3\0-u\0-c\0" in cmd
            if shipped and PAYLOAD.search(cmd):
                pids.append(pid)
    return pids


def ctd_tmp() -> set[str]:
    return {p.name for p in Path("/tmp").glob("ctd-surge-*")}


def assured_spec(rate: int, duration: float, teardown: bool = True) -> SurgeLoad:
    return SurgeLoad.model_validate({
        "kind": "surge", "source": "client", "destination": "venue", "protocol": "tcp",
        "mode": "assured", "teardown": teardown,
        "shape": {"kind": "constant", "rate": rate, "duration_s": duration}})


def test_assured_flows_are_real_handshakes_across_ssh_hosts(opaque: LabUp) -> None:
    flush_conntrack(gw(opaque))
    tmp_before = ctd_tmp()
    plan = plan_surge(assured_spec(40000, 0.5, teardown=False), Inventory(inventory(opaque)))
    assert plan.remote is not None and plan.venue is not None  # split: no namespace entered
    run = open_surge(plan)
    try:
        run.start()
        wait_until(run.finished, "the surge to end", timeout=60)
        result = run.stop()
        assured = conntrack(gw(opaque), "-p", "tcp").count("[ASSURED]")
    finally:
        run.stop()
        flush_conntrack(gw(opaque))
    assert result["split"] and result["error"] == "" and "left_running" not in result, result
    assert result["partner"]["synacks"] >= result["completed"] > 0, result
    assert assured == result["completed"] == result["flows"], (assured, result)
    wait_until(lambda: not surge_tables(opaque) and not payload_pids(opaque),
               "the hosts to be clean (silence tables, payload processes)", timeout=30)
    assert ctd_tmp() == tmp_before  # nothing written to a target's /tmp


def test_a_killed_orchestrator_leaves_nothing_on_the_hosts(opaque: LabUp,
                                                           tmp_path: Path) -> None:
    spec = tmp_path / "long.yaml"
    spec.write_text("source: client\ndestination: venue\nprotocol: tcp\nmode: assured\n"
                    "shape: {kind: constant, rate: 2000, duration_s: 120}\n")
    proc = spawn("surge", str(spec), "-i", str(inventory(opaque)), "--json",
                 runs_dir=tmp_path / "runs")
    try:
        wait_until(lambda: len(surge_tables(opaque)) >= 2 and payload_pids(opaque),
                   "the split surge running on both hosts", timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_until(lambda: not surge_tables(opaque) and not payload_pids(opaque),
                   "every payload gone and its table removed, by the hosts themselves",
                   timeout=30)
    finally:
        reap_group(proc)
        flush_conntrack(gw(opaque))


def test_the_sending_host_refuses_a_destination_outside_the_networks(opaque: LabUp) -> None:
    """The guard runs again on the host, from the frames themselves: a forged config
    towards 192.0.2.1 never sends."""
    target = Inventory(inventory(opaque)).target("client")
    conn = SshConnector(target)
    try:
        link = Link("eth0", "02:00:00:00:00:01", "02:00:00:00:00:02")
        space = FlowSpace(Dim(int.from_bytes(bytes([10, 77, 0, 2]), "big"), 1),
                          Dim(1024, 10), Dim(9, 1))
        udp = build_template("udp", link, space.a.start, "192.0.2.1", 1024, 9)
        config = {"worker": 0, "workers": 1, "cpu": None, "networks": ["10.78.0.0/16"],
                  "sockets": {"client": {"ifname": "eth0"}}, "max_packets": 10,
                  "max_duration_s": 1, "phases": [{
                      "name": "shape", "space": space.to_json(), "limit": None,
                      "schedule": {"kind": "rate", "segments": [[0, 1, 10, 10]],
                                   "paced": True, "duration": 1},
                      "stages": [{"socket": "client", "template": udp.to_json()}]}]}
        proc = spawn_module(conn, "ctdrill.surge.worker", json.dumps(config))
        lines = list(proc)
        proc.stop()
    finally:
        conn.close()
    assert any("outside the target networks" in ln and '"failed"' in ln for ln in lines), lines


def test_a_new_connection_to_a_full_gateway_says_the_table_may_be_full(
        opaque: LabUp, tmp_path: Path) -> None:
    """Fill the gateway's table (the kernel-wide max) with ASSURED flows; a command that
    needs a new SSH connection to it then says why it may not get one."""
    limit = int(Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text())
    flush_conntrack(gw(opaque))
    try:
        for ports in ([10000, 10999], [20000, 20999], [30000, 30999]):  # top up if short
            if gw_count(opaque) >= limit:
                break
            spec = assured_spec(150000, limit / 100000, teardown=False).model_copy(
                update={"dst_ports": ports})
            run = open_surge(plan_surge(spec, Inventory(inventory(opaque))))
            try:
                run.start()
                wait_until(run.finished, "the fill to end", timeout=120)
            finally:
                run.stop()
        assert gw_count(opaque) >= limit, (gw_count(opaque), limit)
        # early_drop evicts for a new connection what is not ASSURED or is closing, and
        # closing entries expire within seconds (a retransmitted SYN then gets in): keep
        # only ESTABLISHED entries and hold the limit at their number
        for state in ("SYN_SENT", "SYN_RECV", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
                      "TIME_WAIT", "CLOSE", "SYN_SENT2"):
            subprocess.run(["ip", "netns", "exec", gw(opaque), "conntrack", "-D", "-p", "tcp",
                            "--state", state], capture_output=True, check=False)
        for proto in ("udp", "icmp"):
            subprocess.run(["ip", "netns", "exec", gw(opaque), "conntrack", "-D", "-p", proto],
                           capture_output=True, check=False)
        with global_knobs({"net.netfilter.nf_conntrack_max": str(gw_count(opaque))}):
            result = ctdrill("observe", "gw", "-i", str(inventory(opaque)), "--duration",
                             "1", runs_dir=tmp_path / "runs", timeout=120)
        assert result.returncode != 0
        assert "conntrack table may be full" in result.stdout + result.stderr, result
    finally:
        flush_conntrack(gw(opaque))


@pytest.mark.parametrize("name", ["table-pressure-replay", "bypass-canary", "capacity-step",
                                  "rollback"])
def test_shipped_drill_passes_against_hosts_reached_only_over_ssh(opaque: LabUp, name: str,
                                                                  tmp_path: Path) -> None:
    flush_conntrack(gw(opaque))
    before = host_state(opaque)
    result = ctdrill("run", str(DRILLS / f"{name}.yaml"), "-i", str(inventory(opaque)),
                     "--json", runs_dir=tmp_path / "runs", timeout=300)
    out = json.loads(result.stdout) if result.stdout.startswith("{") else {}
    failed = [v for v in out.get("expectations", []) if not v["passed"]]
    assert result.returncode == 0, json.dumps(failed or out, indent=1)[:3000] + result.stderr
    assert out["revert"] and all(r["verified"] for r in out["revert"].values())
    assert host_state(opaque) == before
    assert not surge_tables(opaque) and not payload_pids(opaque)
