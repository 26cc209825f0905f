"""The same drill engine on the Docker lab: run, revert, verify, state as before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctdrill.lab.docker import DockerLab
from tests.integration.drillrun import ctdrill, host_state, records, write_spec
from tests.integration.test_engine import GW_DRILL

pytestmark = [pytest.mark.root, pytest.mark.docker]


def lab_state(lab: DockerLab) -> dict[str, Any]:
    """Stateless ruleset and netfilter sysctls of the containers' namespaces, read with
    `ip netns exec` (the initial namespace is left out: other tests may change it)."""
    state = host_state(lab)  # type: ignore[arg-type]  # needs only .plan.hosts
    state.pop("kernel")
    return state


def test_drill_runs_reverts_and_verifies_on_docker(docker_lab: DockerLab,
                                                  tmp_path: Path) -> None:
    before = lab_state(docker_lab)
    spec = write_spec(tmp_path / "drill.yaml", GW_DRILL.format(duration=2, ttl=60))
    result = ctdrill("run", str(spec), "-i", str(docker_lab.inventory), "--json",
                     runs_dir=tmp_path / "runs")
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout)
    assert all(e["passed"] for e in out["expectations"]), out["expectations"]
    assert out["revert"]["gw"]["verified"] is True
    assert set(out["revert"]["gw"]["restored"]) == {
        "net.netfilter.nf_conntrack_udp_timeout",
        "net.netfilter.nf_conntrack_tcp_timeout_established",
        "net.netfilter.nf_conntrack_udp_timeout_stream"}
    kinds = [r["type"] for r in records(Path(out["journal"]))]
    assert kinds.index("snapshot") < kinds.index("intent") < kinds.index("revert")
    assert kinds[-1] == "end"
    after = lab_state(docker_lab)
    assert after["gw"] == before["gw"]
    assert after == before
