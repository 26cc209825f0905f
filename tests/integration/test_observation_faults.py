"""Honest observation on the real lab: a telemetry link cut mid-drill is noticed at once,
and no verdict passes on data the drill did not have.

The cut takes the gateway's management veth down inside its namespace: the SSH
telemetry channel stays open (TCP only retransmits), which is exactly the failure a
closed-stream check misses. Every test restores the link in a `finally`.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctdrill.lab.manager import LabUp
from ctdrill.system.run import in_netns
from tests.integration.drillrun import (
    ctdrill,
    host_state,
    journal_of,
    reap_group,
    records,
    spawn,
    wait_for_record,
    write_spec,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.root

MGMT_IN_NS = "mgmt0"  # the namespace end of every lab host's management veth

CUT_DRILL = """
drill: link-cut
targets: {{hosts: gw}}
changes:
  - sysctl: {{net.netfilter.nf_conntrack_udp_timeout: 13}}
observe: {{hosts: "gw:client", hz: 20, duration_s: {duration}}}
expect:
  - {{kind: metric, host: gw, metric: max, stat: last, op: ">=", value: 1}}
{guards}
revert: {{ttl_s: 90}}
"""


def cut_spec(tmp_path: Path, duration: float, guards: str = "") -> Path:
    return write_spec(tmp_path / "cut.yaml", CUT_DRILL.format(duration=duration,
                                                              guards=guards))


def set_link(lab: LabUp, state: str) -> None:
    netns = lab.plan.host("gw").netns
    subprocess.run(in_netns(netns, ["ip", "link", "set", MGMT_IN_NS, state]), check=True)


@contextlib.contextmanager
def link_cut(lab: LabUp) -> Iterator[None]:
    set_link(lab, "down")
    try:
        yield
    finally:
        set_link(lab, "up")


def lost_records(journal: Path, host: str) -> list[dict[str, Any]]:
    return [r for r in records(journal) if r["type"] == "target_lost" and r["host"] == host]


def client_heard_since(journal: Path, t: float) -> bool:
    """The client's telemetry (its link is up) was journaled at or after `t`."""
    return any(r["type"] == "samples" and r["host"] == "client" and r["t"] >= t
               for r in records(journal))


def test_a_link_cut_mid_drill_fails_the_verdict_as_no_data(lab: LabUp,
                                                           tmp_path: Path) -> None:
    before = host_state(lab)
    runs = tmp_path / "runs"
    proc = spawn("run", str(cut_spec(tmp_path, duration=12)), "-i",
                 str(lab.plan.ssh_inventory_path), "--json", runs_dir=runs)
    try:
        journal = wait_for_record(runs, "samples")  # observing both hosts
        with link_cut(lab):
            lost = wait_until(lambda: lost_records(journal, "gw"),
                              "the cut gateway to be marked lost", timeout=30)[0]
            # hold the cut for a third of the drill, measured by the client's telemetry
            wait_until(lambda: client_heard_since(journal, lost["t"] + 4)
                       or any(r["type"] == "reverting" for r in records(journal)),
                       "the drill to observe on without the gateway", timeout=60)
        out, err = proc.communicate(timeout=180)
    finally:
        reap_group(proc)
    assert lost["why"] == "stalled"  # the SSH channel never closed: only silence told
    assert proc.returncode == 1, out + err
    result = json.loads(out)
    verdict = next(v for v in result["expectations"] if "on gw" in v["name"])
    assert verdict["passed"] is False
    assert verdict["detail"].startswith("no data (coverage "), verdict["detail"]
    assert result["revert"]["gw"]["verified"] is True
    assert host_state(lab) == before


def test_a_guarded_host_lost_aborts_and_reverts(lab: LabUp, tmp_path: Path) -> None:
    before = host_state(lab)
    runs = tmp_path / "runs"
    guards = "guards: {ceilings: [{hosts: gw, metric: ctr, above: 0.99}]}"
    proc = spawn("run", str(cut_spec(tmp_path, duration=60, guards=guards)), "-i",
                 str(lab.plan.ssh_inventory_path), "--json", runs_dir=runs)
    try:
        journal = wait_for_record(runs, "samples")
        with link_cut(lab):
            wait_until(lambda: lost_records(journal, "gw"),
                       "the guarded gateway to be marked lost", timeout=30)
        # the link is back before the revert needs it
        out, err = proc.communicate(timeout=180)
    finally:
        reap_group(proc)
    assert proc.returncode == 3, out + err
    result = json.loads(out)
    assert "guard: gw: telemetry stalled" in result["reason"]
    assert result["revert"]["gw"]["verified"] is True
    recs = records(journal_of(runs))  # type: ignore[arg-type]
    kinds = [r["type"] for r in recs]
    assert kinds.index("target_lost") < kinds.index("abort") < kinds.index("revert")
    assert host_state(lab) == before


def test_a_ceiling_on_an_unobserved_host_is_refused_before_any_contact(
        lab: LabUp, tmp_path: Path) -> None:
    before = host_state(lab)
    spec = write_spec(tmp_path / "unobserved.yaml", """
drill: unobserved-guard
targets: {hosts: gw}
changes:
  - sysctl: {net.netfilter.nf_conntrack_udp_timeout: 14}
observe: {hosts: gw, duration_s: 2}
guards: {ceilings: [{hosts: venue, metric: ctr, above: 0.5}]}
""")
    for cmd in ("plan", "run"):
        result = ctdrill(cmd, str(spec), "-i", str(lab.plan.inventory_path),
                         runs_dir=tmp_path / "runs")
        assert result.returncode == 2, result.stdout + result.stderr
        assert "could never fire" in result.stderr and "venue" in result.stderr
        assert "Traceback" not in result.stderr
    assert not list((tmp_path / "runs").glob("*/journal.jsonl"))  # nothing started
    assert host_state(lab) == before
