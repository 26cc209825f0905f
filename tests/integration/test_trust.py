"""Trust on the real lab: fenced host operations, locks that cannot leak, a dead-man that
finishes the job, so no fault needs a human (the fast subset of bench/fault_matrix.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from ctdrill.lab.manager import LabUp
from tests.injection import payloads
from tests.integration.drillrun import (
    ctdrill,
    host_state,
    reap_group,
    records,
    spawn,
    wait_for_record,
    write_spec,
)
from tests.waiting import ctrl_c, wait_until

pytestmark = pytest.mark.root
RUN_DIR = Path(os.environ.get("CTDRILL_RUN_DIR", "/run/ctdrill"))

DRILL = """
drill: trust-test
targets: {{hosts: "gw:kernel"}}
changes:
  - hosts: gw
    sysctl: {{net.netfilter.nf_conntrack_udp_timeout: {udp}}}
    bypass:
      - {{name: orders, protocol: tcp, port: 9001}}
  - hosts: kernel
    sysctl: {{net.netfilter.nf_conntrack_max: 131072}}
observe: {{hosts: gw, hz: 20, duration_s: {duration}}}
revert: {{ttl_s: {ttl}}}
"""


def spec(tmp_path: Path, name: str = "drill.yaml", udp: int = 13, duration: float = 2,
         ttl: float = 60) -> Path:
    return write_spec(tmp_path / name, DRILL.format(udp=udp, duration=duration, ttl=ttl))


def run_state(run_id: str) -> list[str]:
    """Locks and dead-man switches of one run left on this machine."""
    left = [p.name for p in RUN_DIR.glob(f"deadman/{run_id}-*")]
    for lock in RUN_DIR.glob("locks/*.json"):
        if json.loads(lock.read_text()).get("run_id") == run_id:
            left.append(lock.name)
    return left


def run_id_of(journal: Path) -> str:
    return str(records(journal)[0]["run_id"])


def test_sigkill_then_the_next_drill_runs_with_nobody_in_between(lab: LabUp,
                                                                 tmp_path: Path) -> None:
    before = host_state(lab)
    runs = tmp_path / "runs"
    ttl = 15
    proc = spawn("run", str(spec(tmp_path, duration=4, ttl=ttl)), "-i",
                 str(lab.plan.inventory_path), runs_dir=runs)
    journal = wait_for_record(runs, "applied_check")
    proc.kill()  # the orchestrator only: its plays die with it (parent-death signal)
    proc.wait()
    run_id = run_id_of(journal)
    assert host_state(lab) != before and run_state(run_id)
    wait_until(lambda: host_state(lab) == before and not run_state(run_id),
               "the dead-man to revert, verify and free every host", timeout=ttl + 60,
               interval=0.25)
    # the next drill: no `ctdrill revert` in between, no lock in the way
    nxt = ctdrill("run", str(spec(tmp_path, "next.yaml")), "-i", str(lab.plan.inventory_path),
                  runs_dir=tmp_path / "runs2")
    assert nxt.returncode == 0, nxt.stdout + nxt.stderr
    # and the old journal says what the dead-man did
    result = ctdrill("revert", str(journal), "--json", runs_dir=runs)
    assert result.returncode == 0, result.stdout + result.stderr
    hosts = json.loads(result.stdout)["hosts"]
    assert {h: v["deadman"]["fired"]["verified"] for h, v in hosts.items()} == \
        {"gw": True, "kernel": True}
    assert host_state(lab) == before


def test_an_unreachable_host_leaves_no_lock_and_changes_nothing(lab: LabUp,
                                                                tmp_path: Path) -> None:
    inv = yaml.safe_load(lab.plan.ssh_inventory_path.read_text())
    gw = inv["all"]["children"]["lab"]["children"]["gateways"]["hosts"]["gw"]
    gw["ansible_port"] = 1  # our own gw address, a closed port: refused at once
    path = tmp_path / "unreachable.yml"
    path.write_text(yaml.safe_dump(inv))
    before = host_state(lab)
    result = ctdrill("run", str(spec(tmp_path)), "-i", str(path), runs_dir=tmp_path / "runs")
    assert result.returncode == 5, result.stdout + result.stderr
    assert "unreachable" in result.stderr and "Traceback" not in result.stderr
    journal = next((tmp_path / "runs").glob("*/journal.jsonl"))
    assert not run_state(run_id_of(journal))  # not even the kernel owner's lock
    assert host_state(lab) == before
    kinds = [r["type"] for r in records(journal)]
    assert kinds.index("locking") < kinds.index("unlocked") < kinds.index("refused")


def test_reverting_an_old_journal_never_touches_a_live_drill(lab: LabUp,
                                                              tmp_path: Path) -> None:
    before = host_state(lab)
    old = ctdrill("run", str(spec(tmp_path, "old.yaml", udp=17)), "-i",
                  str(lab.plan.inventory_path), "--json", runs_dir=tmp_path / "old")
    assert old.returncode == 0, old.stdout + old.stderr
    old_journal = json.loads(old.stdout)["journal"]
    runs = tmp_path / "live"
    live = spawn("run", str(spec(tmp_path, "live.yaml", duration=300, ttl=600)), "-i",
                 str(lab.plan.inventory_path), runs_dir=runs)
    try:
        live_run = run_id_of(wait_for_record(runs, "samples"))
        during = host_state(lab)
        result = ctdrill("revert", old_journal, runs_dir=tmp_path / "old")
        assert result.returncode == 5, result.stdout + result.stderr
        assert f"held by drill run {live_run}" in result.stderr
        assert host_state(lab) == during  # the live drill's changes are all still there
        ctrl_c(live)
        _, err = live.communicate(timeout=120)
        assert live.returncode == 3, err
    finally:
        reap_group(live)
    assert host_state(lab) == before


def test_code_in_every_free_text_field_stays_text_through_plan_run_and_report(
        lab: LabUp, tmp_path: Path) -> None:
    sentinel = tmp_path / "sentinel"
    text = DRILL.format(udp=19, duration=2, ttl=60)
    data = yaml.safe_load(text)
    evil = payloads(sentinel)
    data["description"] = " ".join(evil)
    data["expect"] = [{"kind": "metric", "name": p, "host": "gw", "metric": "max",
                       "stat": "max", "op": ">", "value": 0} for p in evil]
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(data))
    before = host_state(lab)
    plan = ctdrill("plan", str(path), "-i", str(lab.plan.ssh_inventory_path),
                   runs_dir=tmp_path / "runs")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    run = ctdrill("run", str(path), "-i", str(lab.plan.ssh_inventory_path), "--json",
                  runs_dir=tmp_path / "runs")
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout)
    assert [v["name"] for v in out["expectations"][1:]] == evil  # kept verbatim
    report = ctdrill("report", out["journal"], runs_dir=tmp_path / "runs")
    assert report.returncode == 0, report.stdout + report.stderr
    assert not sentinel.exists()
    assert host_state(lab) == before
