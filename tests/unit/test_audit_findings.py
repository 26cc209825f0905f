"""Findings: each planted problem is named with its numbers, healthy settings are not,
and the ranking follows the headroom. Also the host facts and the ruleset reading the
findings rest on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ctdrill.audit.composition import Composition, CompositionResult
from ctdrill.audit.facts import READER, HostFacts, host_facts, parse_slab, timeouts
from ctdrill.audit.findings import (
    NOTRACK_CAVEAT,
    capacity,
    findings,
    geometry,
    noisy,
    notrack,
    timeout_findings,
)
from ctdrill.audit.parse import parse_line
from ctdrill.audit.ruleset import StatefulRules, stateful_rules
from ctdrill.errors import EnvironmentProblem
from tests.unit.audit_fakes import (
    DEFAULT_SYSCTL,
    LAB_RULESET,
    SLAB_LINE,
    planted_table,
    reader_output,
    tcp_line,
    udp_line,
)


def facts(**sysctl: str) -> HostFacts:
    values = {**DEFAULT_SYSCTL, **{f"nf_conntrack_{k}": v for k, v in sysctl.items()}}
    return host_facts(reader_output(values), "test")


def comp_of(texts: list[str]) -> CompositionResult:
    c = Composition()
    for text in texts:
        entry = parse_line(text)
        assert entry is not None
        c.add(entry)
    return c.result()


def rules(*rule_exprs: list[Any], nat_chain: bool = False) -> StatefulRules:
    items: list[dict[str, Any]] = [{"metainfo": {"json_schema_version": 1}}]
    if nat_chain:
        items.append({"chain": {"family": "ip", "table": "t", "name": "post",
                                "type": "nat", "hook": "postrouting", "prio": 100}})
    for i, expr in enumerate(rule_exprs):
        items.append({"rule": {"family": "ip", "table": "t",
                               "chain": "post" if nat_chain else "fwd", "handle": i + 1,
                               "expr": expr}})
    return stateful_rules(json.dumps({"nftables": items}))


def dport(proto: str, right: Any) -> dict[str, Any]:
    return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": "dport"}},
                      "right": right}}


CT_STATE = {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "established"}}


# ---------------------------------------------------------------- facts


def test_the_reader_runs_here_and_reads_what_proc_says() -> None:
    """The reader script itself, run on this machine (it only reads)."""
    out = subprocess.run([sys.executable, "-c", READER], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    got = host_facts(out, "this machine")
    nf = Path("/proc/sys/net/netfilter")
    if not (nf / "nf_conntrack_max").exists():
        pytest.skip("nf_conntrack is not loaded here")
    assert got.get("max") == int((nf / "nf_conntrack_max").read_text())
    assert got.get("buckets") == int((nf / "nf_conntrack_buckets").read_text())
    assert timeouts(got)["udp"] == int((nf / "nf_conntrack_udp_timeout").read_text())
    assert got.release == Path("/proc/sys/kernel/osrelease").read_text().strip()
    assert got.slab.object_size is not None or got.slab.error


def test_host_facts_keep_integers_and_drop_host_text() -> None:
    got = host_facts(reader_output({"nf_conntrack_max": "4096", "nf_conntrack_buckets": "x",
                                    "nf_conntrack_count": "\u00b2", "other": "5",
                                    "nf_conntrack_udp_timeout": "99999999999999999999999"}),
                     "h")
    assert got.sysctl == {"max": 4096}
    assert got.slab.object_size == 256 and got.slab.active_objs == 1008
    assert got.memtotal_bytes == 24_000_000 * 1024


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"sysctl": 3}', "\x1b[2J"])
def test_output_that_is_not_the_readers_is_one_error(text: str) -> None:
    with pytest.raises(EnvironmentProblem, match="unexpected output on h"):
        host_facts(text, "h")


def test_slab_unreadable_is_said_and_the_sysfs_size_is_the_fallback() -> None:
    assert parse_slab(None, None, "/proc/slabinfo: Permission denied").error \
        == "/proc/slabinfo: Permission denied"
    assert parse_slab(None, "320", "/proc/slabinfo: Permission denied") \
        .object_size == 320
    assert (parse_slab("nf_conntrack x y z", None).error or "").startswith("unreadable slab")
    assert parse_slab(SLAB_LINE).object_size == 256


def test_timeouts_are_named_as_in_specs() -> None:
    t = timeouts(facts())
    assert t["udp"] == 180 and t["udp_stream"] == 120 and t["tcp_time_wait"] == 120
    assert "frag6" not in t and "acct" not in t


# ---------------------------------------------------------------- geometry, capacity


def test_wrong_geometry_is_named_with_its_numbers() -> None:
    [g] = geometry(facts(max="65536", buckets="1024"))
    assert g.kind == "geometry" and g.headroom == 65536 - 1024
    ev = g.evidence
    assert ev["chain_length_at_max"] == 128 and ev["max_per_bucket"] == 64
    assert ev["memory_at_max_bytes"] == 65536 * 256
    assert ev["proposed_buckets"] == 65536 and ev["hcp95_at_max"] > ev["proposed_hcp95_at_max"]
    assert g.change == {"sysctl": {"net.netfilter.nf_conntrack_buckets": 65536}}


@pytest.mark.parametrize(("mx", "buckets"), [("262144", "262144"), ("65536", "16384"),
                                             ("8192", "65536")])
def test_kernel_default_geometries_are_not_findings(mx: str, buckets: str) -> None:
    assert geometry(facts(max=mx, buckets=buckets)) == []


def test_memory_figures_are_missing_not_invented_without_the_slab() -> None:
    f = host_facts(reader_output({"nf_conntrack_max": "65536",
                                  "nf_conntrack_buckets": "1024"}, slab=None), "h")
    [g] = geometry(f)
    assert "memory_at_max_bytes" not in g.evidence and g.evidence["slab_error"]


def test_a_full_table_asks_for_room() -> None:
    [c] = capacity(facts(max="65536", buckets="65536", count="60000"))
    assert c.change["sysctl"]["net.netfilter.nf_conntrack_max"] == 131072
    assert c.headroom == 131072 - 65536
    assert capacity(facts(max="65536", buckets="65536", count="1000")) == []


# ---------------------------------------------------------------- timeouts


def test_an_over_long_udp_timeout_for_one_packet_flows_is_named() -> None:
    comp = comp_of(planted_table(udp=1000, tcp=200))
    [t] = timeout_findings(facts(udp_timeout="180"), comp)
    assert (t.subject, t.change) == ("udp", {"timeouts": {"udp": 30}})
    assert t.headroom == round(1000 * (1 - 30 / 180)) == t.evidence["freed"]
    assert t.evidence["configured_s"] == 180 and t.evidence["one_packet"] == 1000
    assert t.evidence["entries"] == 1000 and t.evidence["share"] == pytest.approx(1000 / 1200, abs=1e-4)


def test_the_default_udp_timeout_is_tightened_only_when_stale_udp_dominates() -> None:
    mostly = comp_of(planted_table(udp=1000, tcp=200))
    [t] = timeout_findings(facts(udp_timeout="30"), mostly)
    assert t.change == {"timeouts": {"udp": 10}}
    few = comp_of(planted_table(udp=300, tcp=900))
    assert timeout_findings(facts(udp_timeout="30"), few) == []
    assert timeout_findings(facts(udp_timeout="10"), mostly) == []


def test_time_wait_under_a_long_timeout() -> None:
    comp = comp_of([tcp_line(i, "TIME_WAIT", 80) for i in range(400)]
                   + [tcp_line(i) for i in range(600)])
    [t] = timeout_findings(facts(tcp_timeout_time_wait="240"), comp)
    assert t.change == {"timeouts": {"tcp_time_wait": 120}} and t.headroom == 200


# ---------------------------------------------------------------- noisy, notrack


def test_one_noisy_source_range_is_named() -> None:
    comp = comp_of([udp_line(i, src=f"10.77.0.{2 + i % 200}") for i in range(900)]
                   + [tcp_line(i) for i in range(300)])
    found = {f.kind: f for f in noisy(facts(), comp)}
    src = found["noisy_source"]
    assert src.subject == "10.77.0.0/24" and src.headroom == 900
    assert src.evidence["stale"] == {"udp_unreplied": 900}
    assert src.change == {"timeouts": {"udp": 30}}
    assert src.evidence["timeout_change_frees"] == 750
    assert found["noisy_destination"].subject == "10.78.0.2"  # the flood's target


def test_a_busy_destination_with_live_flows_is_not_noise() -> None:
    comp = comp_of([tcp_line(i) for i in range(1000)])
    assert [f.kind for f in noisy(facts(), comp)] == []  # many /24s, one live service


def test_the_lab_ruleset_needs_state_for_everything() -> None:
    r = stateful_rules(json.dumps(LAB_RULESET))
    wide = r.table_wide()
    assert wide is not None and "ctd_lab" in wide.where
    comp = comp_of([tcp_line(i) for i in range(500)])
    assert notrack(comp, r) == []


def test_a_class_no_stateful_rule_reaches_is_a_notrack_candidate() -> None:
    r = rules([dport("tcp", {"set": [22, {"range": [8000, 8100]}]}), CT_STATE,
               {"accept": None}])
    comp = comp_of([tcp_line(i, dport=9001) for i in range(300)]
                   + [tcp_line(i, dport=22) for i in range(300)]
                   + [tcp_line(i, dport=8080) for i in range(300)])
    found = notrack(comp, r)
    assert [f.subject for f in found] == ["tcp/9001"]
    assert found[0].caveat == NOTRACK_CAVEAT and found[0].headroom == 300
    assert found[0].change == {"bypass": {"name": "tcp_9001", "protocol": "tcp",
                                          "port": 9001}}


@pytest.mark.parametrize("expr", [
    [CT_STATE, {"accept": None}],                                    # table-wide
    [dport("tcp", "@ports"), CT_STATE],                              # named set: any port
    [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
     {"ct helper": "ftp"}],                                          # ct statement
    [dport("tcp", 9001), {"mangle": {"key": {"ct": {"key": "mark"}}, "value": 1}}],
    [{"xt": {"type": "match", "name": "conntrack"}}],               # opaque iptables-nft
    [dport("th", 9001), {"flow": {"op": "add", "flowtable": "@ft"}}],
])
def test_what_the_ruleset_reader_cannot_narrow_keeps_the_class_tracked(
        expr: list[Any]) -> None:
    comp = comp_of([tcp_line(i, dport=9001) for i in range(300)])
    assert notrack(comp, rules(expr)) == []


def test_nat_needs_state_for_the_traffic_it_reaches() -> None:
    comp = comp_of([tcp_line(i, dport=9001) for i in range(300)])
    assert notrack(comp, rules([{"masquerade": None}], nat_chain=True)) == []
    only_udp = rules([dport("udp", 53), {"accept": None}], nat_chain=True)
    assert [f.subject for f in notrack(comp, only_udp)] == ["tcp/9001"]


@pytest.mark.parametrize("text", ["", "{}", '{"nftables": 3}', "<html>"])
def test_an_unreadable_ruleset_makes_no_candidates(text: str) -> None:
    r = stateful_rules(text)
    assert not r.readable
    assert notrack(comp_of([tcp_line(i) for i in range(300)]), r) == []


# ---------------------------------------------------------------- ranking


def test_planted_problems_rank_by_headroom() -> None:
    comp = comp_of(planted_table(udp=1000, tcp=200))
    found = findings(facts(max="65536", buckets="1024", udp_timeout="180"), comp,
                     stateful_rules(json.dumps(LAB_RULESET)))
    assert [(f.kind, f.headroom) for f in found] == [
        ("geometry", 64512), ("noisy_destination", 1200), ("noisy_source", 1000),
        ("timeout", 833)]
    assert [f.kind for f in findings(facts(max="65536", buckets="65536", udp_timeout="30"),
                                     comp_of(planted_table(udp=100, tcp=900)),
                                     stateful_rules(json.dumps(LAB_RULESET)))] == []
