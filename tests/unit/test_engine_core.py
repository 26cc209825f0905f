"""Pure parts of the drill engine: pools, plan, revert plan, nft rendering, judging, journal."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from ctdrill.engine.guards import ceiling_breach
from ctdrill.engine.judge import judge, statistic
from ctdrill.engine.nft_render import render_bypass_body
from ctdrill.engine.observed import ObservationResult
from ctdrill.engine.plan import plan_host, resolve_changes, revert_plan, select_pools
from ctdrill.engine.recover import recovery_plan
from ctdrill.errors import InvalidInput
from ctdrill.journal import Journal, read_journal
from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.spec.models import Bypass, Ceiling, DrillSpec, MetricExpectation, timeout_sysctl

HOST_UTILS = Path(__file__).resolve().parents[2] / "playbooks/module_utils"


def spec(**kw: Any) -> DrillSpec:
    base: dict[str, Any] = {"drill": "t", "targets": {"hosts": "gws"}}
    base.update(kw)
    return DrillSpec.model_validate(base)


def snap(owner: bool = False, **values: str) -> dict[str, Any]:
    sysctl = {"net.netfilter.nf_conntrack_udp_timeout": "30",
              "net.netfilter.nf_conntrack_max": "262144"}
    sysctl.update(values)
    return {"sysctl": sysctl, "kernel_owner": owner, "netns_inode": 42, "tables": []}


def test_canary_pools_are_deterministic_and_recorded() -> None:
    s = spec(targets={"hosts": "gws", "canary": {"count": 1}})
    pools = select_pools(s, ["gw-b", "gw-a", "gw-c"])
    assert pools.canary == ("gw-a",) and pools.control == ("gw-b", "gw-c")
    pct = select_pools(spec(targets={"hosts": "x", "canary": {"percent": 50}}), list("abc"))
    assert pct.canary == ("a", "b")
    assert select_pools(spec(), ["b", "a"]).canary == ("a", "b")


def test_a_seeded_canary_is_the_same_pool_whatever_the_inventory_order() -> None:
    gws = [f"gw-{i:02d}" for i in range(16)]
    s = spec(targets={"hosts": "gws", "canary": {"percent": 25, "seed": 7}})
    pools = select_pools(s, gws)
    assert len(pools.canary) == 4 and len(pools.control) == 12
    assert set(pools.canary) | set(pools.control) == set(gws)
    assert select_pools(s, list(reversed(gws))) == pools  # inventory order does not matter
    assert pools.canary != tuple(gws[:4])  # not simply the first by name
    other = select_pools(spec(targets={"hosts": "gws", "canary": {"percent": 25, "seed": 8}}),
                         gws)
    assert other.canary != pools.canary
    # Python's own RNG algorithm is the contract: pinned so a change of it is seen
    assert pools.canary == ("gw-03", "gw-07", "gw-09", "gw-14"), pools.canary


def test_change_sets_default_to_the_canary_and_later_sets_win() -> None:
    s = spec(targets={"hosts": "gws", "canary": {"count": 1}},
             changes=[{"sysctl": {"net.netfilter.nf_conntrack_udp_timeout": 10}},
                      {"sysctl": {"net.netfilter.nf_conntrack_udp_timeout": 12},
                       "timeouts": {"tcp_established": 60}},
                      {"hosts": "kernel", "sysctl": {"net.netfilter.nf_conntrack_max": 4096}}])
    changes = resolve_changes(s, select_pools(s, ["a", "b"]), lambda p: [p])
    assert set(changes) == {"a", "kernel"}
    assert changes["a"].sysctl == {"net.netfilter.nf_conntrack_udp_timeout": "12",
                                   "net.netfilter.nf_conntrack_tcp_timeout_established": "60"}


def test_timeout_names_map_to_the_kernel_keys() -> None:
    assert timeout_sysctl("udp") == "net.netfilter.nf_conntrack_udp_timeout"
    assert timeout_sysctl("udp_stream") == "net.netfilter.nf_conntrack_udp_timeout_stream"
    assert timeout_sysctl("tcp_time_wait") == "net.netfilter.nf_conntrack_tcp_timeout_time_wait"


def test_kernel_wide_keys_are_refused_on_non_owners_only() -> None:
    s = spec(changes=[{"sysctl": {"net.netfilter.nf_conntrack_max": 4096}}])
    changes = resolve_changes(s, select_pools(s, ["gw"]), lambda p: [p])["gw"]
    refused = plan_host("gw", changes, snap(owner=False))
    assert refused.refusals and "kernel-wide" in refused.refusals[0]
    assert not refused.sysctl
    allowed = plan_host("gw", changes, snap(owner=True))
    assert not allowed.refusals
    assert allowed.sysctl[0].before == "262144" and allowed.sysctl[0].after == "4096"


def test_unknown_keys_and_an_existing_drill_table_are_refused() -> None:
    s = spec(changes=[{"sysctl": {"net.netfilter.nf_nope": 1},
                       "bypass": [{"name": "o", "protocol": "tcp", "port": 1}]}])
    hc = resolve_changes(s, select_pools(s, ["gw"]), lambda p: [p])["gw"]
    sn = snap() | {"tables": [["inet", "ctd_drill"]]}
    refusals = plan_host("gw", hc, sn).refusals
    assert any("does not exist" in r for r in refusals)
    assert any("already has table" in r for r in refusals)


def test_revert_plan_holds_originals_and_our_table() -> None:
    s = spec(changes=[{"timeouts": {"udp": 5},
                       "bypass": [{"name": "o", "protocol": "udp", "port": 9}]}])
    hc = resolve_changes(s, select_pools(s, ["gw"]), lambda p: [p])["gw"]
    hp = plan_host("gw", hc, snap())
    assert revert_plan(hp) == {"sysctl": {"net.netfilter.nf_conntrack_udp_timeout": "30"},
                               "nft_tables": [["inet", "ctd_drill"]]}
    assert hp.apply_vars(revert_plan(hp))["sysctl"] == {
        "net.netfilter.nf_conntrack_udp_timeout": "5"}


def test_bypass_rules_cover_both_directions_before_conntrack() -> None:
    body = render_bypass_body([Bypass(name="orders", protocol="tcp", port=9001,
                                      network="10.78.0.0/16")])
    assert "priority raw" in body
    assert "ip daddr 10.78.0.0/16 tcp dport 9001 notrack" in body
    assert "ip saddr 10.78.0.0/16 tcp sport 9001 notrack" in body
    assert body.count("notrack") == 4  # prerouting and output, each direction


def wm(ctr: float) -> WindowMetrics:
    return WindowMetrics(t=0, window_s=1, count=int(ctr * 100), max=100, buckets=100, ctr=ctr,
                         hcp95=1, chain_too_long_per_s=0, nfd_per_s=0, nfd_fraction=0,
                         new_flows_per_s=0, early_drop_per_s=0, insert_failed_per_s=0,
                         drops=0, table_full_events=0)


def test_statistics_and_expectations() -> None:
    assert statistic([1, 5, 3], "max") == 5
    assert statistic([1, 5, 3], "last") == 3
    assert statistic([2, 4], "mean") == 3
    # nearest rank: the ceil(0.95 * 100) = 95th smallest of 0..99 (metrics/quantile.py)
    assert statistic(list(range(100)), "p95") == 94
    exp = MetricExpectation(kind="metric", host="gw", metric="ctr", stat="max", op=">=", value=0.5)
    s = spec()

    def seen(history: dict[str, list[WindowMetrics]]) -> ObservationResult:
        # samples every 0.5 s across the whole 1 s observation: full coverage
        return ObservationResult(started=0.0, history=history, span=(0.0, 1.0),
                                 arrivals={h: [0.0, 0.5, 1.0] for h in history})

    assert judge(exp, seen({"gw": [wm(0.1), wm(0.6)]}), s).passed
    assert not judge(exp, seen({"gw": [wm(0.1)]}), s).passed
    missing = judge(exp, seen({}), s)
    assert not missing.passed and "no data (coverage 0 %" in missing.detail


def test_ceiling_guard_fires_only_on_protected_hosts() -> None:
    c = Ceiling(hosts="venue", metric="ctr", above=0.5)
    assert ceiling_breach(c, {"venue"}, "venue", wm(0.6)) is not None
    assert ceiling_breach(c, {"venue"}, "gw", wm(0.9)) is None
    assert ceiling_breach(c, {"venue"}, "venue", wm(0.4)) is None


def test_journal_is_append_only_and_survives_a_torn_last_line(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    j.write("start", run_id="r1", inventory="/inv")
    j.write("snapshot", host="gw", snapshot={"sysctl": {}})
    j.close()
    with (tmp_path / "j.jsonl").open("a") as f:
        f.write('{"type": "revert_pl')  # crash mid-write
    recs = read_journal(tmp_path / "j.jsonl")
    assert [r["type"] for r in recs] == ["start", "snapshot"]
    (tmp_path / "x.jsonl").write_text('{"type": "nope"}\n')
    with pytest.raises(InvalidInput):
        read_journal(tmp_path / "x.jsonl")
    with pytest.raises(InvalidInput):
        read_journal(tmp_path / "absent.jsonl")


def test_recovery_plan_from_records() -> None:
    recs = [
        {"type": "start", "run_id": "r", "inventory": "/i", "orchestrator_pid": 1},
        {"type": "locked", "hosts": ["gw", "venue", "kernel"]},
        {"type": "snapshot", "host": "gw", "snapshot": {"a": 1}},
        {"type": "snapshot", "host": "venue", "snapshot": {"b": 1}},
        {"type": "revert_plan", "host": "gw", "plan": {"sysctl": {}}},
        {"type": "unlocked", "hosts": ["kernel"]},
    ]
    rp = recovery_plan(recs)
    assert set(rp.reverts) == {"gw"}
    assert rp.reverts["gw"] == {"plan": {"sysctl": {}}, "snapshot": {"a": 1}}
    assert rp.locked_only == ["venue"]
    assert not rp.ended


def load_host_utils(name: str) -> Any:
    """A host module by the name the host modules use (ansible.module_utils.NAME)."""
    package = importlib.import_module("ansible.module_utils")
    if str(HOST_UTILS) not in package.__path__:
        package.__path__.append(str(HOST_UTILS))
    return importlib.import_module(f"ansible.module_utils.{name}")


def test_host_compare_ignores_counters_but_not_writable_keys() -> None:
    host = load_host_utils("ctdrill_snapshot_ops")
    a = {"sysctl": {"k1": "1", "net.netfilter.nf_conntrack_count": "5", "ro": "1"},
         "writable": ["k1", "net.netfilter.nf_conntrack_count"], "ruleset": "table x"}
    b = json.loads(json.dumps(a))
    b["sysctl"]["net.netfilter.nf_conntrack_count"] = "9"
    b["sysctl"]["ro"] = "2"
    assert host.compare(a, b) == []
    b["sysctl"]["k1"] = "2"
    b["ruleset"] = "table y"
    assert len(host.compare(a, b)) == 2
    assert host.compare(a, b, touched=["ro"])[0].startswith("sysctl k1")
    assert load_host_utils("ctdrill_sysctl_ops").normalise("4096\t87380  6291456\n") == \
        "4096 87380 6291456"


def test_host_refuses_tables_it_does_not_own() -> None:
    host = load_host_utils("ctdrill_nft_ops")
    with pytest.raises(load_host_utils("ctdrill_env").HostError,
                       match="only manages tables named ctd_"):
        host.check_own_table("filter")
