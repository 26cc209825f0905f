"""The drill engine on the real lab with real Ansible: apply, revert, verify, whatever happens."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from ctdrill.lab.manager import LabUp
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
from tests.waiting import ctrl_c, wait_until

pytestmark = pytest.mark.root

GW_DRILL = """
drill: engine-test
targets: {{hosts: gw}}
changes:
  - sysctl: {{net.netfilter.nf_conntrack_udp_timeout: 11}}
    timeouts: {{tcp_established: 3000, udp_stream: 61}}
    bypass:
      - {{name: orders, protocol: tcp, port: 9001}}
load: {{kind: udp-flows, source: client, destination: venue, flows: 300, start_s: 0.3}}
observe: {{hz: 20, duration_s: {duration}}}
expect:
  - {{kind: metric, host: gw, metric: count, stat: max, op: ">=", value: 300}}
revert: {{ttl_s: {ttl}}}
"""


LONG, LONG_TTL = 300, 600  # an observation no test waits for: the test ends it itself


def gw_spec(tmp_path: Path, duration: float = 2, ttl: float = 60) -> Path:
    return write_spec(tmp_path / "drill.yaml", GW_DRILL.format(duration=duration, ttl=ttl))


@pytest.mark.parametrize("transport", ["netns", "ssh"])
def test_apply_then_revert_restores_state_byte_for_byte(lab: LabUp, tmp_path: Path,
                                                        transport: str) -> None:
    inv = lab.plan.inventory_path if transport == "netns" else lab.plan.ssh_inventory_path
    before = host_state(lab)
    result = ctdrill("run", str(gw_spec(tmp_path)), "-i", str(inv), "--json",
                     runs_dir=tmp_path / "runs")
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout)
    assert out["revert"]["gw"]["verified"] is True
    assert out["expectations"][0]["passed"] is True
    assert set(out["revert"]["gw"]["restored"]) == {
        "net.netfilter.nf_conntrack_udp_timeout",
        "net.netfilter.nf_conntrack_tcp_timeout_established",
        "net.netfilter.nf_conntrack_udp_timeout_stream"}
    assert host_state(lab) == before
    kinds = [r["type"] for r in records(Path(out["journal"]))]
    # write-ahead order: snapshot and revert plan before the intent, revert after
    assert kinds.index("snapshot") < kinds.index("revert_plan") < kinds.index("intent")
    assert kinds.index("intent") < kinds.index("outcome") < kinds.index("revert")
    assert kinds[-1] == "end"


def test_changes_are_really_applied_during_the_drill(lab: LabUp, tmp_path: Path) -> None:
    before = host_state(lab)
    runs = tmp_path / "runs"
    # held open by construction: a long observation that this test ends itself
    proc = spawn("run", str(gw_spec(tmp_path, duration=LONG, ttl=LONG_TTL)), "-i",
                 str(lab.plan.inventory_path), runs_dir=runs)
    try:
        wait_for_record(runs, "samples")
        state = host_state(lab)["gw"]
        assert "nf_conntrack_udp_timeout:11" in state["sysctl"]
        assert "table inet ctd_drill" in state["ruleset"]
        assert "tcp dport 9001 notrack" in state["ruleset"]
        ctrl_c(proc)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 3, err
    finally:
        reap_group(proc)
    assert host_state(lab) == before


PHASES = ["locked", "intent", "samples", "revert_plan"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("phase", PHASES)
def test_signal_at_each_phase_reverts_and_verifies(lab: LabUp, tmp_path: Path,
                                                   sig: signal.Signals, phase: str) -> None:
    before = host_state(lab)
    runs = tmp_path / "runs"
    proc = spawn("run", str(gw_spec(tmp_path, duration=LONG, ttl=LONG_TTL)), "-i",
                 str(lab.plan.inventory_path), runs_dir=runs)
    try:
        wait_for_record(runs, phase)
        ctrl_c(proc, sig)
        if phase == "samples":  # a second signal while stopping must not skip the revert
            wait_for_record(runs, "abort")
            ctrl_c(proc, sig)
        _, err = proc.communicate(timeout=120)
    finally:
        reap_group(proc)
    assert proc.returncode == 3, err
    journal = journal_of(runs)
    assert journal is not None
    recs = records(journal)
    reverts = [r for r in recs if r["type"] == "revert"]
    assert reverts and all(r["verified"] for r in reverts)
    assert host_state(lab) == before


def test_signal_during_revert_does_not_skip_it(lab: LabUp, tmp_path: Path) -> None:
    before = host_state(lab)
    runs = tmp_path / "runs"
    proc = spawn("run", str(gw_spec(tmp_path, duration=1)), "-i",
                 str(lab.plan.inventory_path), runs_dir=runs)
    try:
        wait_for_record(runs, "reverting")
        for _ in range(3):
            ctrl_c(proc)
        _, err = proc.communicate(timeout=120)
    finally:
        reap_group(proc)
    # a verified revert is the outcome whether or not the signals landed before it ended
    assert proc.returncode in (0, 3), err
    recs = records(journal_of(runs))  # type: ignore[arg-type]
    assert [r["verified"] for r in recs if r["type"] == "revert"] == [True]
    assert host_state(lab) == before


def test_sigkill_in_observe_target_reverts_itself_within_ttl(lab: LabUp,
                                                             tmp_path: Path) -> None:
    before = host_state(lab)
    runs = tmp_path / "runs"
    ttl = 12.0
    proc = spawn("run", str(gw_spec(tmp_path, duration=2, ttl=ttl)), "-i",
                 str(lab.plan.inventory_path), runs_dir=runs)
    journal = wait_for_record(runs, "applied_check")  # applied; observing
    armed_at = next(r["t"] for r in records(journal) if r["type"] == "intent")
    proc.kill()
    proc.wait()
    reap_group(proc)
    assert host_state(lab)["gw"] != before["gw"]  # the changes are still there
    wait_until(lambda: host_state(lab) == before, "the target to revert itself at its TTL",
               timeout=ttl + 60, interval=0.25)
    fired = [r for r in records(journal) if r["type"] == "intent"]
    assert fired and time.time() >= armed_at + ttl  # it was the dead-man, not a revert
    # the journal still leads to a verified revert that clears the lock and the switch
    result = ctdrill("revert", str(journal), "--json", runs_dir=runs)
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout)
    assert out["verified"] is True
    assert out["hosts"]["gw"]["deadman"]["fired"]["errors"] == []
    # and a new drill can take the lock again
    assert ctdrill("run", str(gw_spec(tmp_path)), "-i", str(lab.plan.inventory_path),
                   runs_dir=runs).returncode == 0


def test_revert_from_journal_before_ttl_and_twice(lab: LabUp, tmp_path: Path) -> None:
    before = host_state(lab)
    runs = tmp_path / "runs"
    proc = spawn("run", str(gw_spec(tmp_path, duration=LONG, ttl=LONG_TTL)), "-i",
                 str(lab.plan.inventory_path), runs_dir=runs)
    journal = wait_for_record(runs, "samples")
    proc.kill()
    proc.wait()
    reap_group(proc)
    for _ in range(2):
        result = ctdrill("revert", str(journal), "--json", runs_dir=runs)
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["verified"] is True
        assert host_state(lab) == before
    assert not list(Path("/run/ctdrill/deadman").glob(f"{json.loads(journal.read_text().splitlines()[0])['run_id']}*"))


def test_change_failing_midway_reverts_what_was_applied(lab: LabUp, tmp_path: Path) -> None:
    before = host_state(lab)
    spec = write_spec(tmp_path / "fail.yaml", """
drill: fails-midway
targets: {hosts: "gw:venue"}
changes:
  - sysctl: {net.netfilter.nf_conntrack_udp_timeout: 12}
  - hosts: venue
    sysctl: {net.ipv4.tcp_syn_retries: notanumber}  # plain text the kernel refuses
observe: {duration_s: 1}
""")
    result = ctdrill("run", str(spec), "-i", str(lab.plan.inventory_path), "--json",
                     runs_dir=tmp_path / "runs")
    assert result.returncode == 3, result.stdout + result.stderr
    out = json.loads(result.stdout)
    assert "apply failed on venue" in out["reason"]
    assert out["revert"]["gw"]["verified"] and out["revert"]["venue"]["verified"]
    assert "net.netfilter.nf_conntrack_udp_timeout" in out["revert"]["gw"]["restored"]
    assert host_state(lab) == before


def test_second_drill_on_a_locked_target_refuses_and_stale_lock_is_reported(
        lab: LabUp, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    # the first drill observes far longer than this test lasts: it holds its lock until killed
    first = spawn("run", str(gw_spec(tmp_path, duration=LONG, ttl=LONG_TTL)), "-i",
                  str(lab.plan.inventory_path), runs_dir=runs)
    try:
        journal = wait_for_record(runs, "samples")
        second = ctdrill("run", str(gw_spec(tmp_path)), "-i", str(lab.plan.inventory_path),
                         runs_dir=tmp_path / "runs2")
    finally:
        first.kill()
        first.wait()
        reap_group(first)
    assert second.returncode == 5
    assert "locked by drill run" in second.stderr and "STALE" not in second.stderr
    third = ctdrill("run", str(gw_spec(tmp_path)), "-i", str(lab.plan.inventory_path),
                    runs_dir=tmp_path / "runs3")
    assert third.returncode == 5
    assert "STALE" in third.stderr and f"ctdrill revert {journal}" in third.stderr
    assert ctdrill("revert", str(journal), runs_dir=runs).returncode == 0


def test_kernel_wide_key_on_a_namespace_is_refused_at_plan_time(lab: LabUp,
                                                                tmp_path: Path) -> None:
    before = host_state(lab)
    spec = write_spec(tmp_path / "kw.yaml", """
drill: kernel-wide-on-gw
targets: {hosts: gw}
changes:
  - sysctl: {net.netfilter.nf_conntrack_max: 4096}
""")
    for cmd in ("plan", "run"):
        result = ctdrill(cmd, str(spec), "-i", str(lab.plan.inventory_path),
                         runs_dir=tmp_path / "runs")
        assert result.returncode == 2, result.stdout + result.stderr
        assert "kernel-wide" in result.stderr and "kernel_owner" in result.stderr
        assert "Traceback" not in result.stderr
    assert host_state(lab) == before


def test_plan_shows_exact_before_and_after_and_changes_nothing(lab: LabUp,
                                                               tmp_path: Path) -> None:
    before = host_state(lab)
    result = ctdrill("plan", str(gw_spec(tmp_path)), "-i", str(lab.plan.inventory_path),
                     "--json", runs_dir=tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    changes = {c["key"]: (c["before"], c["after"]) for c in out["hosts"]["gw"]["sysctl"]}
    assert changes["net.netfilter.nf_conntrack_udp_timeout"] == ("30", "11")
    assert changes["net.netfilter.nf_conntrack_tcp_timeout_established"] == ("432000", "3000")
    assert "tcp dport 9001 notrack" in out["hosts"]["gw"]["nft_rules"]
    assert host_state(lab) == before
    assert not (tmp_path / "runs").exists()


def test_kernel_owner_knobs_change_and_restore_exactly(lab: LabUp, tmp_path: Path) -> None:
    before = host_state(lab)
    spec = write_spec(tmp_path / "cap.yaml", """
drill: capacity-one-step
targets: {hosts: kernel}
changes:
  - sysctl: {net.netfilter.nf_conntrack_buckets: 8192, net.netfilter.nf_conntrack_max: 8192}
observe: {hosts: gw, duration_s: 1}
expect:
  - {kind: metric, host: gw, metric: max, stat: last, op: "==", value: 8192}
""")
    result = ctdrill("run", str(spec), "-i", str(lab.plan.inventory_path), "--json",
                     runs_dir=tmp_path / "runs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert host_state(lab) == before


def test_malformed_spec_is_exit_2_and_contacts_nothing(lab: LabUp, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "bad.yaml", "drill: bad\ntargets: {hosts: gw}\nobserve:\n  hzz: 3\n")
    result = ctdrill("run", str(spec), "-i", str(lab.plan.inventory_path),
                     runs_dir=tmp_path / "runs")
    assert result.returncode == 2
    assert f"{spec}:4:3" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_guard_ceiling_aborts_and_reverts(lab: LabUp, tmp_path: Path) -> None:
    before = host_state(lab)
    spec = write_spec(tmp_path / "guard.yaml", """
drill: guarded
targets: {hosts: gw}
changes:
  - timeouts: {udp: 20}
load: {kind: udp-flows, source: client, destination: venue, flows: 2000, start_s: 0.2}
observe: {duration_s: 60}
revert: {ttl_s: 120}
guards:
  ceilings: [{hosts: gw, metric: count, above: 100}]
""")
    result = ctdrill("run", str(spec), "-i", str(lab.plan.inventory_path), "--json",
                     runs_dir=tmp_path / "runs")
    assert result.returncode == 3, result.stdout + result.stderr
    out = json.loads(result.stdout)
    assert out["reason"].startswith("guard: count on gw")
    assert out["revert"]["gw"]["verified"]
    # stopped early, by construction: had it observed to the end, its samples would span 60 s
    samples = [e["sample"]["t"] for r in records(Path(out["journal"]))
               if r["type"] == "samples" for e in r["samples"]]
    assert samples and max(samples) - min(samples) < 60
    assert host_state(lab) == before
