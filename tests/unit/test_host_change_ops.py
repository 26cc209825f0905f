"""The host steps that change a target in one task each (ctdrill_change_ops): prepare
(lock, lock-only dead-man, snapshot) and apply (arm, sysctls, table, read-back), against
a /proc/sys tree in tmp, a state directory in tmp and an in-memory nft; no root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_host_module import (
    MAX,
    TABLE,
    UDP,
    FakeNft,
    FakeTimer,
    _load,
    make_env,
    owner,
)

change = _load("ctdrill_change_ops")
lock = _load("ctdrill_lock")
deadman = _load("ctdrill_deadman")
hostenv = _load("ctdrill_env")
snapshot_ops = _load("ctdrill_snapshot_ops")
NFT = {"family": "inet", "table": "ctd_drill", "body": "chain c { }"}
REVERT = {"sysctl": {UDP: "30"}, "nft_tables": [["inet", "ctd_drill"]]}


def prepared(env: Any, run_id: str = "r1") -> dict[str, Any]:
    return change.prepare_host({"run_id": run_id, "owner": owner(run_id), "ttl_s": 60,
                                "keys": []}, env)


def part(**kw: Any) -> dict[str, Any]:
    base = {"run_id": "r1", "revert": REVERT, "ttl_s": 60, "sysctl": {UDP: 10}, "nft": NFT}
    return base | kw


def test_prepare_locks_arms_the_lock_only_switch_and_snapshots(tmp_path: Path) -> None:
    timer = FakeTimer()
    env = make_env(tmp_path, timer=timer)
    out = prepared(env)
    assert out["holder"]["run_id"] == "r1" and lock.lock_holder(env)["run_id"] == "r1"
    assert out["snapshot"] == snapshot_ops.snapshot([], env)
    assert out["snapshot"]["sysctl"][UDP] == "30"
    assert [unit for _, unit, _, _ in timer.started] == ["ctdrill-deadman-r1"]


def test_prepare_of_a_host_another_run_holds_changes_nothing(tmp_path: Path) -> None:
    timer = FakeTimer()
    env = make_env(tmp_path, timer=timer)
    prepared(env, "other")
    with pytest.raises(change.Locked) as caught:
        prepared(env, "r1")
    assert caught.value.holder["run_id"] == "other"
    assert len(timer.started) == 1  # only the holder's switch was ever armed


def test_apply_arms_then_writes_then_loads_and_reads_the_host_back(tmp_path: Path) -> None:
    nft = FakeNft()
    env = make_env(tmp_path, nft=nft)
    prepared(env)
    applied: list[dict[str, Any]] = []
    out = change.apply_host(part(check_keys=[MAX]), applied, env)
    assert [(a["task"], a.get("name")) for a in applied] == [
        (change.ARM_TASK, None), (change.SYSCTL_TASK, UDP), (change.NFT_TASK, None)]
    assert applied[1] | {"task": None} == {"task": None, "name": UDP, "ok": True,
                                          "before": "30", "after": "10", "changed": True}
    assert ("inet", "ctd_drill") in nft.tables and TABLE in out["listing"]
    assert out["snapshot"]["sysctl"][UDP] == "10"
    assert out["snapshot"]["tables"] == [["inet", "ctd_drill"]]
    armed = deadman.deadman_status("r1", env)
    assert armed["armed"] and out["deadman"]["dir"] == armed["dir"]


def test_a_later_apply_does_not_arm_and_reads_back_only_when_asked(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    prepared(env)
    applied: list[dict[str, Any]] = []
    out = change.apply_host(part(arm=False, nft=None, sysctl={UDP: 5}), applied, env)
    assert [a["task"] for a in applied] == [change.SYSCTL_TASK] and out == {}


def test_apply_without_the_lock_changes_nothing(tmp_path: Path) -> None:
    nft = FakeNft()
    env = make_env(tmp_path, nft=nft)
    prepared(env, "other")
    applied: list[dict[str, Any]] = []
    with pytest.raises(hostenv.Fenced):
        change.apply_host(part(), applied, env)
    assert applied == [] and not nft.tables
    assert snapshot_ops.snapshot([], env)["sysctl"][UDP] == "30"


def test_a_table_ctdrill_does_not_own_is_refused_before_anything_changes(
        tmp_path: Path) -> None:
    timer = FakeTimer()
    env = make_env(tmp_path, timer=timer)
    prepared(env)
    applied: list[dict[str, Any]] = []
    with pytest.raises(hostenv.HostError, match="refusing to touch nft table 'filter'"):
        change.apply_host(part(nft=dict(NFT, table="filter")), applied, env)
    assert applied == [] and len(timer.started) == 1  # the lock-only switch, not re-armed
    assert snapshot_ops.snapshot([], env)["sysctl"][UDP] == "30"


def test_a_failed_write_reports_what_landed_and_stops_there(tmp_path: Path) -> None:
    nft = FakeNft()
    env = make_env(tmp_path, nft=nft)
    prepared(env)
    applied: list[dict[str, Any]] = []
    with pytest.raises(hostenv.HostError):
        change.apply_host(part(sysctl={UDP: 10, "net.netfilter.nope": 1}), applied, env)
    assert [(a["task"], a.get("name"), a["ok"]) for a in applied] == [
        (change.ARM_TASK, None, True), (change.SYSCTL_TASK, UDP, True),
        (change.SYSCTL_TASK, "net.netfilter.nope", False)]
    assert not nft.tables  # the table comes after the sysctls: never loaded
