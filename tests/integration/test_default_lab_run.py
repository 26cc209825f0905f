"""`ctdrill run SPEC` without -i builds an ephemeral lab, runs, and removes it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ctdrill.lab import manager
from tests.integration.drillrun import ctdrill

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]


def kernel_knobs() -> tuple[str, str]:
    nf = Path("/proc/sys/net/netfilter")
    return ((nf / "nf_conntrack_max").read_text(), (nf / "nf_conntrack_buckets").read_text())


def test_rollback_drill_runs_on_an_ephemeral_lab_and_leaves_nothing(tmp_path: Path) -> None:
    labs_before = set(manager.list_labs())
    knobs = kernel_knobs()
    ruleset = subprocess.run(["nft", "-s", "list", "ruleset"], capture_output=True, text=True,
                             check=True).stdout
    result = ctdrill("run", str(ROOT / "drills/rollback.yaml"), "--json",
                     runs_dir=tmp_path / "runs")
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout)
    assert out["expectations"][0]["passed"]
    assert all(r["verified"] for r in out["revert"].values())
    assert set(out["revert"]) == {"gw", "kernel"}
    assert out["timings_s"]["revert_verify"] > 0
    assert set(manager.list_labs()) == labs_before
    assert kernel_knobs() == knobs
    assert subprocess.run(["nft", "-s", "list", "ruleset"], capture_output=True, text=True,
                          check=True).stdout == ruleset
