"""`ctdrill audit` on a lab gateway with planted problems, exactly as a user runs it.

Planted: wrong geometry (nf_conntrack_buckets 1024 under max 65536, kernel-wide, restored
by system.knobs), an over-long UDP timeout (180 s in the gateway's namespace) for a mix
of one-packet UDP flows, and one noisy source range (the client's /24 sends most of
them; the venue's /24 a few). The audit must name each with the kernel's own numbers,
rank them by headroom, write specs `ctdrill validate` accepts and `ctdrill plan` plans
without refusal, parse the real conntrack tool's lines, and change nothing: every
netfilter sysctl and ruleset of every lab host, the kernel-wide knobs and the gateway's
table entries are the same after it as before.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctdrill.audit.parse import parse_line
from ctdrill.connect.netns import NetnsConnector
from ctdrill.lab.flows import udp_flows
from ctdrill.lab.manager import LabUp
from ctdrill.system.knobs import global_knobs
from tests.integration.drillrun import ctdrill, host_state
from tests.integration.helpers import flush_conntrack, ns_read
from tests.integration.test_drills import machine_state

pytestmark = pytest.mark.root

UDP_TIMEOUT = "/proc/sys/net/netfilter/nf_conntrack_udp_timeout"
NOISY_FLOWS = 1500
OTHER_FLOWS = 100
PLANTED_KNOBS = {"net.netfilter.nf_conntrack_buckets": 1024,
                 "net.netfilter.nf_conntrack_max": 65536}


def in_gw(lab: LabUp, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", lab.plan.host("gw").netns, *argv],
                          capture_output=True, text=True, check=True, timeout=60).stdout


def entries(lab: LabUp) -> set[tuple[str, ...]]:
    """The gateway's entries by original tuple (seconds left change; tuples must not)."""
    out: set[tuple[str, ...]] = set()
    for text in in_gw(lab, "conntrack", "-L", "-o", "extended").splitlines():
        e = parse_line(text)
        assert e is not None, text
        out.add((e.proto, e.src, e.dst, str(e.sport), str(e.dport)))
    return out


@pytest.fixture
def planted(lab: LabUp) -> Iterator[LabUp]:
    """The three planted problems, all put back afterwards."""
    gw, client, venue = (lab.plan.host(r) for r in ("gw", "client", "venue"))
    original = ns_read(gw.netns, UDP_TIMEOUT)
    with global_knobs(PLANTED_KNOBS):
        in_gw(lab, "sh", "-c", f"echo 180 > {UDP_TIMEOUT}")
        try:
            flush_conntrack(gw.netns)
            nets = lab.plan.target_networks
            assert udp_flows(NetnsConnector(client.netns), venue.data_addr, NOISY_FLOWS,
                             nets) == (NOISY_FLOWS, 0)
            assert udp_flows(NetnsConnector(venue.netns), client.data_addr, OTHER_FLOWS,
                             nets, first_port=20000) == (OTHER_FLOWS, 0)
            yield lab
        finally:
            in_gw(lab, "sh", "-c", f"echo {original} > {UDP_TIMEOUT}")
            flush_conntrack(gw.netns)


def audit(lab: LabUp, inventory: Path, out: Path) -> dict[str, Any]:
    res = ctdrill("audit", "-i", str(inventory), "gw", "--json", "--out", str(out),
                  runs_dir=out / "runs", timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    doc = json.loads(res.stdout)
    [host] = doc["hosts"]
    assert host["host"] == "gw" and host["error"] is None
    return dict(host)


def test_audit_names_the_planted_problems_ranked_and_changes_nothing(
        planted: LabUp, tmp_path: Path) -> None:
    lab = planted
    before, machine, table = host_state(lab), machine_state(), entries(lab)
    count = int(in_gw(lab, "conntrack", "-C"))
    h = audit(lab, lab.plan.inventory_path, tmp_path / "out")
    assert host_state(lab) == before and machine_state() == machine
    assert entries(lab) == table and int(in_gw(lab, "conntrack", "-C")) == count

    t = h["table"]
    assert (t["max"], t["buckets"]) == (65536, 1024)
    assert t["max"] == int(ns_read(lab.plan.host("gw").netns,
                                   "/proc/sys/net/netfilter/nf_conntrack_max"))
    assert t["chain_length_at_max"] == 2 * 65536 / 1024 and t["listed"] == count
    stale = h["composition"]["stale"]["udp_unreplied"]["count"]
    udp = [e for e in map(parse_line, in_gw(lab, "conntrack", "-L", "-p", "udp")
                          .splitlines()) if e is not None and e.unreplied]
    noisy = sum(e.src == lab.plan.host("client").data_addr for e in udp)
    assert stale == len(udp) and noisy > NOISY_FLOWS * 0.9 and len(udp) - noisy <= OTHER_FLOWS

    found = {f["kind"]: f for f in h["findings"]}
    assert [f["kind"] for f in h["findings"]] == ["geometry", "noisy_source",
                                                  "noisy_destination", "timeout"]
    heads = [f["headroom_entries"] for f in h["findings"]]
    assert heads == sorted(heads, reverse=True)
    assert found["geometry"]["headroom_entries"] == 65536 - 1024
    assert found["noisy_source"]["subject"] == "10.77.0.0/24"
    assert found["noisy_source"]["headroom_entries"] == noisy
    assert found["noisy_destination"]["subject"] == lab.plan.host("venue").data_addr
    assert found["timeout"]["evidence"]["configured_s"] == 180
    assert found["timeout"]["change"] == {"timeouts": {"udp": 30}}
    assert found["timeout"]["headroom_entries"] == round(stale * (1 - 30 / 180))
    assert any("every traffic class needs conntrack" in n for n in h["notes"])
    slab = h["slab"]
    assert slab["object_size"] and t["memory_at_max_bytes"] == 65536 * slab["object_size"]
    specs_validate_and_plan(lab, tmp_path / "out", h)


def specs_validate_and_plan(lab: LabUp, out: Path, h: dict[str, Any]) -> None:
    specs = sorted(out.glob("*.yaml"))
    assert {Path(f["spec"]["path"]) for f in h["findings"]} == set(specs)
    assert len(specs) == 2  # geometry; the udp timeout (the noisy range's fix too)
    res = ctdrill("validate", *map(str, specs), runs_dir=out / "runs")
    assert res.returncode == 0, res.stdout + res.stderr
    for spec in specs:
        res = ctdrill("plan", str(spec), "-i", str(lab.plan.inventory_path), "--json",
                      runs_dir=out / "runs", timeout=240)
        assert res.returncode == 0, spec.name + res.stdout[-2000:] + res.stderr[-2000:]


def test_the_real_tools_lines_parse(planted: LabUp) -> None:
    for args in (("-L",), ("-L", "-o", "extended")):
        text = in_gw(planted, "conntrack", *args)
        parsed = [parse_line(line) for line in text.splitlines() if line.strip()]
        assert parsed and all(e is not None for e in parsed), text[:500]
        assert {e.proto for e in parsed if e} == {"udp"}


def test_audit_over_ssh_finds_the_same_and_changes_no_setting(planted: LabUp,
                                                             tmp_path: Path) -> None:
    before, machine = host_state(planted), machine_state()
    h = audit(planted, planted.plan.ssh_inventory_path, tmp_path / "out")
    assert host_state(planted) == before and machine_state() == machine
    assert [f["kind"] for f in h["findings"]] == ["geometry", "noisy_source",
                                                  "noisy_destination", "timeout"]
    assert h["where"].startswith("gw (root@")
