"""The four shipped drills, end to end, exactly as a user runs them: `ctdrill run
drills/NAME.yaml` on an ephemeral lab, expectations judged, hosts verified after."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ctdrill.lab import manager
from tests.integration.drillrun import ctdrill, reap_group, records
from tests.waiting import wait_until

pytestmark = pytest.mark.root
DRILLS = Path(__file__).resolve().parents[2] / "drills"


def machine_state() -> dict[str, str]:
    nf = Path("/proc/sys/net/netfilter")
    return {
        "max": (nf / "nf_conntrack_max").read_text(),
        "buckets": (nf / "nf_conntrack_buckets").read_text(),
        "ruleset": subprocess.run(["nft", "-s", "list", "ruleset"], capture_output=True,
                                  text=True, check=True).stdout,
        "labs": " ".join(manager.list_labs()),
    }


@pytest.mark.parametrize("name", ["table-pressure-replay", "bypass-canary", "capacity-step",
                                  "rollback"])
def test_shipped_drill_passes_and_leaves_the_machine_as_it_was(name: str,
                                                               tmp_path: Path) -> None:
    before = machine_state()
    result = ctdrill("run", str(DRILLS / f"{name}.yaml"), "--json",
                     runs_dir=tmp_path / "runs", timeout=240)
    out = json.loads(result.stdout) if result.stdout.startswith("{") else {}
    failed = [v for v in out.get("expectations", []) if not v["passed"]]
    assert result.returncode == 0, json.dumps(failed or out, indent=1) + result.stderr
    assert out["revert"] and all(r["verified"] for r in out["revert"].values())
    assert machine_state() == before
    recs = records(Path(out["journal"]))
    assert recs[-1]["type"] == "end" and recs[-1]["exit_code"] == 0
    if name == "table-pressure-replay":
        kinds = [r["to_state"] for r in recs if r["type"] == "transition"]
        assert kinds[:2] == ["CT_TIGHTENING", "CT_PRESSURED"] and kinds[-1] == "CT_HEALTHY"


def test_rollback_dead_man_variant_targets_revert_themselves(tmp_path: Path) -> None:
    """Kill the orchestrator mid-drill: every target, the kernel owner included, puts
    itself back at the TTL; the journal then confirms and clears the locks."""
    import signal
    import time

    from tests.integration.conftest import unique_lab_name
    from tests.integration.drillrun import host_state, spawn, wait_for_record

    spec = tmp_path / "rollback-deadman.yaml"
    spec.write_text((DRILLS / "rollback.yaml").read_text()
                    .replace("revert: {ttl_s: 60}", "revert: {ttl_s: 15}")
                    .replace("duration_s: 2}", "duration_s: 4}"))
    name = unique_lab_name("dm")
    lab = manager.up(name, ssh=False)
    try:
        before, machine = host_state(lab), machine_state()
        runs = tmp_path / "runs"
        proc = spawn("run", str(spec), "-i", str(lab.plan.inventory_path), runs_dir=runs)
        journal = wait_for_record(runs, "applied_check")  # applied; observing
        armed_at = next(r["t"] for r in records(journal) if r["type"] == "intent")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reap_group(proc)
        assert machine_state()["max"] == "65536\n"  # still changed: nobody reverted yet
        wait_until(lambda: host_state(lab) == before and machine_state() == machine,
                   "the targets to revert themselves at their TTL", timeout=15 + 60,
                   interval=0.25)
        assert time.time() >= armed_at + 15  # the dead-man did it, at its TTL
        result = ctdrill("revert", str(journal), "--json", runs_dir=runs)
        assert result.returncode == 0, result.stdout + result.stderr
        hosts = json.loads(result.stdout)["hosts"]
        assert set(hosts) == {"gw", "kernel"}
        assert all(h["deadman"].get("fired") for h in hosts.values())
    finally:
        manager.down(name)
