"""The flow surge against the real kernel: counts, ASSURED entries, drops, replay, signals.

Every surge goes from the lab's client namespace to its venue through the gateway;
nothing is sent anywhere else. Each test leaves no worker, nft table or entry behind.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from ctdrill.errors import InvalidInput
from ctdrill.lab.manager import LabUp
from ctdrill.surge import suppress
from ctdrill.surge.launch import open_surge
from ctdrill.surge.plan import plan_surge
from ctdrill.surge.runner import SurgeRun
from ctdrill.surge.spec import SurgeLoad
from ctdrill.system.knobs import global_knobs, read_knob
from ctdrill.targets.inventory import Inventory
from ctdrill.telemetry.agent import parse_stat_table
from ctdrill.telemetry.protocol import Sample
from ctdrill.telemetry.streams import open_stream
from tests.integration.drillrun import ctdrill, host_state, reap_group, write_spec
from tests.integration.helpers import flush_conntrack, ns_count, ns_read
from tests.waiting import ctrl_c, wait_stable, wait_until

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def clean(lab: LabUp) -> Iterator[None]:
    gw = lab.plan.host("gw").netns
    flush_conntrack(gw)
    try:
        yield
    finally:
        for role in ("client", "venue"):
            suppress.remove(lab.plan.host(role).netns)
        flush_conntrack(gw)


def tables(lab: LabUp, role: str) -> str:
    return subprocess.run(["ip", "netns", "exec", lab.plan.host(role).netns, "nft", "list",
                           "tables"], capture_output=True, text=True, check=True).stdout


@contextmanager
def surge(lab: LabUp, **fields: Any) -> Iterator[SurgeRun]:
    spec = SurgeLoad.model_validate({"kind": "surge", "source": "client",
                                     "destination": "venue", **fields})
    run = SurgeRun(plan_surge(spec, Inventory(lab.plan.inventory_path)))
    try:
        run.start()
        yield run
    finally:
        run.stop()


def run_to_end(lab: LabUp, timeout: float = 30, **fields: Any) -> dict[str, Any]:
    with surge(lab, **fields) as run:
        assert run.wait(timeout)
        return run.stop()


def gw_entries(lab: LabUp, *args: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "exec", lab.plan.host("gw").netns, "conntrack", "-L",
                          *args], capture_output=True, text=True, check=True).stdout
    return [ln for ln in out.splitlines() if ln.strip()]


@pytest.mark.parametrize("protocol", ["udp", "tcp", "icmp"])
def test_unanswered_count_delta_equals_flows_sent(lab: LabUp, protocol: str) -> None:
    gw = lab.plan.host("gw").netns
    before = ns_count(gw)
    result = run_to_end(lab, protocol=protocol, src_addrs=3,
                        shape={"kind": "constant", "rate": 40000, "duration_s": 0.5})
    assert result["stopped"] == "completed" and result["errors"] == 0
    assert result["flows"] == result["packets"] == 20000
    assert wait_stable(lambda: ns_count(gw), "the gateway count") - before == result["flows"]
    assert "ctd_surge" not in tables(lab, "venue")  # removed afterwards
    if protocol == "tcp":  # the venue never answered: every entry is still SYN_SENT
        assert len(gw_entries(lab, "-p", "tcp", "--state", "SYN_SENT")) == 20000


def test_max_mode_counts_stay_truthful(lab: LabUp) -> None:
    gw = lab.plan.host("gw").netns
    before = ns_count(gw)
    result = run_to_end(lab, workers=2, shape={"kind": "max", "duration_s": 0.3})
    assert result["workers"] == 2 and result["flows"] > 10000
    settled = wait_stable(lambda: ns_count(gw), "the gateway count")
    assert settled - before == result["flows"] - result["errors"]


def test_assured_mode_leaves_established_assured_entries(lab: LabUp) -> None:
    result = run_to_end(lab, protocol="tcp", mode="assured", teardown=False,
                        shape={"kind": "constant", "rate": 20000, "duration_s": 0.25})
    assert result["completed"] == 5000 and result["packets"] == 15000
    entries = gw_entries(lab, "-p", "tcp")
    assert len(entries) == 5000
    assert all("ESTABLISHED" in e and "[ASSURED]" in e for e in entries), entries[:3]
    assert "ctd_surge" not in tables(lab, "client") + tables(lab, "venue")


def test_teardown_resets_assured_entries(lab: LabUp) -> None:
    result = run_to_end(lab, protocol="tcp", mode="assured",
                        shape={"kind": "constant", "rate": 20000, "duration_s": 0.2})
    assert result["phases"]["shape"]["teardown"] == 4000
    entries = gw_entries(lab, "-p", "tcp")
    assert len(entries) == 4000
    assert not [e for e in entries if "ESTABLISHED" in e]
    assert all(" CLOSE " in e for e in entries)


def test_assured_fill_makes_the_gateway_drop_new_flows(lab: LabUp) -> None:
    """The failure itself: a table full of ASSURED entries cannot early-drop, so the
    kernel drops new flows (with max == buckets an unanswered flood never does)."""
    gw = lab.plan.host("gw").netns
    size = 4096
    max_key, buckets_key = "net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets"
    original = (read_knob(max_key), read_knob(buckets_key))
    with global_knobs({buckets_key: size, max_key: size}):
        before = parse_stat_table(ns_read(gw, "/proc/net/stat/nf_conntrack"))
        result = run_to_end(lab, protocol="udp", fill={"flows": size},
                            shape={"kind": "constant", "rate": 10000, "duration_s": 0.3})
        after = parse_stat_table(ns_read(gw, "/proc/net/stat/nf_conntrack"))
        during = (read_knob(max_key), read_knob(buckets_key))
        assured = gw_entries(lab, "-p", "tcp")
        flush_conntrack(gw)
    assert during == (str(size), str(size)), f"the knobs changed under the test: {during}"
    assert (read_knob(max_key), read_knob(buckets_key)) == original
    assert result["phases"]["fill"]["completed"] == size
    assert result["phases"]["shape"]["flows"] == 3000
    states = {" ".join(w for w in e.split() if w.isupper() or w == "[ASSURED]")
              for e in assured}
    # new UDP flows dropped: the table is full of entries early_drop cannot evict
    assert after["drop"] - before["drop"] > 2500, (before, after, result, states)
    assert after["early_drop"] - before["early_drop"] == 0
    assert len(assured) == size  # reset by the teardown, still counted until they expire


def test_destination_guard_refuses_outside_networks(lab: LabUp) -> None:
    inv = Inventory(lab.plan.inventory_path)
    for dst in ("192.0.2.1", "10.79.0.1", "127.0.0.1"):
        spec = SurgeLoad.model_validate({"kind": "surge", "source": "client", "destination": dst,
                                         "shape": {"kind": "max", "duration_s": 1}})
        with pytest.raises(InvalidInput, match="outside the target networks"):
            plan_surge(spec, inv)
    spec = SurgeLoad.model_validate({"kind": "surge", "source": "client", "destination": "venue",
                                     "src_addrs": 70000 - 65536,
                                     "shape": {"kind": "max", "duration_s": 1}})
    plan_surge(spec, inv)  # 4464 sources from 10.77.0.2 stay inside 10.77/16


def _count_at(samples: list[Sample], t: float) -> float:
    """The gateway's count at wall time t, interpolated between 50 Hz samples."""
    for a, b in itertools.pairwise(samples):
        if a.t <= t <= b.t:
            return a.count + (b.count - a.count) * (t - a.t) / max(b.t - a.t, 1e-9)
    return float(samples[-1].count if t > samples[-1].t else samples[0].count)


def test_replay_profile_is_followed(lab: LabUp, tmp_path: Path) -> None:
    rates = [4000, 16000, 8000, 24000, 2000, 12000]
    bin_s = 0.5
    profile = tmp_path / "episode.csv"
    profile.write_text("t,flows_per_s\n" + "".join(f"{i * bin_s},{r}\n"
                                                   for i, r in enumerate(rates)))
    stream = open_stream(Inventory(lab.plan.inventory_path).target("gw"), 50)
    samples: list[Sample] = []
    reader = threading.Thread(target=lambda: samples.extend(stream), daemon=True)
    reader.start()
    try:
        wait_until(lambda: samples, "the first telemetry sample")
        with surge(lab, shape={"kind": "replay", "profile": str(profile)}) as run:
            assert run.wait(20)
            started = run.started_at
            result = run.stop()
        end = started + len(rates) * bin_s
        wait_until(lambda: samples[-1].t > end + 0.1, "samples past the end of the replay")
    finally:
        stream.close()
        reader.join(timeout=3)
    # every flow of the profile is sent or, after a stall on a busy machine, reported as
    # shortfall (the pacer forgives debt rather than bursting): the count is truthful
    assert result["requested"] == sum(r * bin_s for r in rates)
    assert result["flows"] + result["shortfall"] == result["requested"], result
    achieved = [(_count_at(samples, started + (i + 1) * bin_s)
                 - _count_at(samples, started + i * bin_s)) / bin_s for i in range(len(rates))]
    r = statistics.correlation(rates, achieved)
    assert r >= 0.95, (rates, achieved)


def test_pcap_replay_sends_each_recorded_flow_once(lab: LabUp, tmp_path: Path) -> None:
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    pkts = []
    for i in range(1500):  # recorded elsewhere: foreign addresses, mixed protocols
        ip = IP(src=f"192.168.{i % 5}.1", dst="172.16.0.9")
        l4 = [TCP(sport=2000 + i, dport=443, flags="S"), UDP(sport=3000 + i, dport=53),
              ICMP(type=8, id=i)][i % 3]
        pkt = Ether() / ip / l4
        pkt.time = 500 + i / 1000
        pkts.append(pkt)
    wrpcap(str(tmp_path / "episode.pcap"), pkts)
    result = run_to_end(lab, src_addrs=2, shape={"kind": "replay", "pcap":
                                                  str(tmp_path / "episode.pcap"), "scale": 3})
    # paced by the recording: 1.5 s recorded at scale 3 cannot be sent in less than 0.5 s
    assert result["flows"] == 1500 and result["duration_s"] >= 0.45
    entries = gw_entries(lab)
    assert len(entries) == 1500
    assert {e.split()[0] for e in entries} == {"tcp", "udp", "icmp"}
    assert all("dst=10.78.0.2" in e and ("src=10.77.0.2" in e or "src=10.77.0.3" in e)
               for e in entries)


def test_ctrl_c_mid_surge_stops_it_with_a_truthful_count(lab: LabUp) -> None:
    gw = lab.plan.host("gw").netns
    before = ns_count(gw)
    # 30 s at 30k/s: far longer than the test waits, so the Ctrl-C lands mid-surge
    proc = subprocess.Popen([sys.executable, "-m", "ctdrill", "surge", "-i",
                             str(lab.plan.inventory_path), "--rate", "30000", "--duration",
                             "30", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        wait_until(lambda: ns_count(gw) - before >= 20000, "20k flows through the gateway")
        ctrl_c(proc)
        out, err = proc.communicate(timeout=60)
    finally:
        reap_group(proc)
    assert proc.returncode == 3, err
    result = json.loads(out)
    assert result["stopped"] == "SIGINT"
    assert 20000 < result["flows"] < 30000 * 30  # stopped mid-way, not run to the end
    assert wait_stable(lambda: ns_count(gw), "the gateway count") - before == result["flows"]
    assert "ctd_surge" not in tables(lab, "venue")


SURGE_DRILL = """
drill: surge-engine
targets: {{hosts: gw}}
load:
  kind: surge
  source: client
  destination: venue
  protocol: tcp
  shape: {{kind: ramp, from_rate: 5000, to_rate: 15000, duration_s: 1}}
  start_s: 0.3
observe: {{hz: 20, duration_s: 2}}
revert: {{ttl_s: 60}}
"""


def test_engine_runs_a_surge_drill_end_to_end(lab: LabUp, tmp_path: Path) -> None:
    before = host_state(lab)
    spec = write_spec(tmp_path / "surge.yaml", SURGE_DRILL.format())
    result = ctdrill("run", str(spec), "-i", str(lab.plan.inventory_path), "--json",
                     runs_dir=tmp_path / "runs")
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout)
    load = out["load"]
    load = load["phases"][0] if "phases" in load and isinstance(load["phases"], list) else load
    assert load["kind"] == "surge" and load["error"] == ""
    # the ramp asks for 10000 flows; on a busy machine the pacer forgives debt after a
    # stall instead of bursting, so the truthful count is flows + shortfall
    assert math.isclose(load["requested"], 10000, rel_tol=0.01), load
    assert load["flows"] > 0 and load["flows"] + load["shortfall"] == load["requested"], load
    assert host_state(lab) == before  # reverted, and no ctd_surge table left behind


def test_a_source_over_ssh_runs_the_surge_there(lab: LabUp, tmp_path: Path) -> None:
    """An SSH source that is no namespace here: the senders are shipped to it (the lab's
    client, reached through its own sshd; nothing of ctdrill installed for its python3),
    stopped mid-way through the channel."""
    inv = yaml.safe_load(lab.plan.ssh_inventory_path.read_text())
    client = inv["all"]["children"]["lab"]["children"]["clients"]["hosts"]["client"]
    del client["ctdrill_netns"]  # as a real remote host: nothing local to enter
    path = tmp_path / "remote.yml"
    path.write_text(yaml.safe_dump(inv))
    gw = lab.plan.host("gw").netns
    before = ns_count(gw)
    spec = SurgeLoad.model_validate({"kind": "surge", "source": "client", "destination": "venue",
                                     "shape": {"kind": "constant", "rate": 20000,
                                               "duration_s": 30}})
    plan = plan_surge(spec, Inventory(path))
    assert plan.remote is not None
    run = open_surge(plan)
    try:
        run.start()
        wait_until(lambda: ns_count(gw) - before >= 10000, "10k flows through the gateway")
    finally:
        result = run.stop("stopped")
    # stopped by the controller (its SIGTERM to each sender), not run to its end
    assert result["split"] and result["stopped"] in ("stopped", "SIGTERM"), result
    assert result["flows"] < 20000 * 30  # stopped through the channel, not run to the end
    settled = wait_stable(lambda: ns_count(gw), "the gateway count")
    assert settled - before == result["flows"] >= 10000
