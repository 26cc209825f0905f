"""lab up / status / down against the real kernel: idempotent, complete, leaves nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctdrill.cli.app import app
from ctdrill.lab import manager, sshd
from ctdrill.lab.topology import plan_for
from tests.integration.conftest import unique_lab_name

pytestmark = pytest.mark.root
runner = CliRunner()


def leftovers(name: str) -> list[str]:
    plan = plan_for(name, 0)
    found = [f"netns {n}" for n in manager.existing_namespaces(plan.ns_prefix)]
    found += [f"link {n}" for n in manager.existing_links(plan.mgmt_link_prefix)]
    found += [f"sshd {p}" for p in sshd.lab_sshd_pids(plan)]
    if plan.state_dir.exists():
        found.append(f"dir {plan.state_dir}")
    return found


def test_up_is_idempotent_and_down_leaves_nothing() -> None:
    name = unique_lab_name("lc")
    try:
        first = runner.invoke(app, ["lab", "up", "--name", name, "--json"])
        assert first.exit_code == 0, first.output
        info = json.loads(first.stdout)
        assert info["created"] is True
        assert all(Path(p).exists() for p in info["inventories"])
        again = runner.invoke(app, ["lab", "up", "--name", name, "--json"])
        assert json.loads(again.stdout)["created"] is False
        st = runner.invoke(app, ["lab", "status", "--name", name, "--json"])
        assert st.exit_code == 0, st.output
        assert json.loads(st.stdout)["healthy"] is True
        plan = manager.load_plan(name)
        assert plan is not None
        # a session held open to sshd spawns a child that must also go at down
        assert len(sshd.lab_sshd_pids(plan)) == 4  # client, gw, venue + the kernel owner
    finally:
        result = runner.invoke(app, ["lab", "down", "--name", name])
    assert result.exit_code == 0
    assert leftovers(name) == []


def test_status_reports_a_broken_lab_and_down_removes_half_built_remains() -> None:
    name = unique_lab_name("hb")
    try:
        lab = manager.up(name, ssh=True)
        # break it: kill the gateway's sshd and delete the venue namespace behind our back
        pid = sshd.read_pid(lab.plan, "gw")
        assert pid is not None
        subprocess.run(["kill", "-9", str(pid)], check=True)
        subprocess.run(["ip", "netns", "del", lab.plan.host("venue").netns], check=True)
        st = runner.invoke(app, ["lab", "status", "--name", name, "--json"])
        assert st.exit_code == 5
        broken = {c["component"] for c in json.loads(st.stdout)["checks"] if not c["ok"]}
        assert f"netns {lab.plan.host('venue').netns}" in broken
        assert "sshd gw" in broken
        # up on a broken lab rebuilds it whole
        rebuilt = manager.up(name, ssh=True)
        assert rebuilt.created
        assert all(c.ok for c in manager.status(rebuilt.plan))
        # simulate a crash mid-build: state file gone, namespaces and processes left
        (rebuilt.plan.state_dir / "state.json").unlink()
    finally:
        manager.down(name)
    assert leftovers(name) == []


def test_status_of_a_missing_lab_is_one_line() -> None:
    result = runner.invoke(app, ["lab", "status", "--name", "nolab"])
    assert result.exit_code == 5
    assert "lab 'nolab' is not up" in result.output


def test_failed_build_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique_lab_name("fb")

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure after the namespaces exist")

    monkeypatch.setattr(manager, "_build_data_path", boom)
    with pytest.raises(RuntimeError):
        manager.up(name, ssh=True)
    assert leftovers(name) == []


def test_gateway_forwards_and_tracks_with_its_ruleset(lab: manager.LabUp) -> None:
    gw = lab.plan.host("gw").netns
    ruleset = subprocess.run(["ip", "netns", "exec", gw, "nft", "list", "ruleset"],
                             capture_output=True, text=True, check=True).stdout
    assert "ct state new" in ruleset and "hook forward" in ruleset
    ping = subprocess.run(["ip", "netns", "exec", lab.plan.host("client").netns, "ping",
                           "-c1", "-W1", lab.plan.host("venue").data_addr], capture_output=True)
    assert ping.returncode == 0
    # client and venue load no conntrack rules: their tables stay empty
    for role in ("client", "venue"):
        count = subprocess.run(["ip", "netns", "exec", lab.plan.host(role).netns, "cat",
                                "/proc/sys/net/netfilter/nf_conntrack_count"],
                               capture_output=True, text=True, check=True).stdout
        assert count.strip() == "0"


def test_down_forgets_drill_locks_and_timers_of_its_namespaces() -> None:
    """Namespace inodes are reused: a stale lock must not block a future lab's host."""
    import os

    from ctdrill.lab.topology import run_dir

    name = unique_lab_name("fg")
    try:
        lab = manager.up(name, ssh=False)
        inode = os.stat(f"/run/netns/{lab.plan.host('gw').netns}").st_ino
        lock = run_dir() / "locks" / f"netns-{inode}.json"
        timer = run_dir() / "deadman" / f"someRun-{inode}"
        lock.parent.mkdir(parents=True, exist_ok=True)
        timer.mkdir(parents=True, exist_ok=True)
        lock.write_text('{"run_id": "someRun"}')
    finally:
        removed = manager.down(name)
    assert not lock.exists() and not timer.exists()
    assert f"lock netns-{inode}.json" in removed
