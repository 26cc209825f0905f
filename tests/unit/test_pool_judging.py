"""Pools judged side by side (pure): lane pairing, per-host expansion of group
expectations, class counts on every pool host, canary vs control, pooled load results."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from ctdrill.engine.judge import judge
from ctdrill.engine.observed import ObservationResult
from ctdrill.engine.perhost import per_host
from ctdrill.engine.pooled import PooledLoad
from ctdrill.errors import InvalidInput
from ctdrill.probe.metrics import Message
from ctdrill.spec.models import DrillSpec, Expectation
from ctdrill.targets.pairs import pair_targets
from ctdrill.targets.target import Target

POOLS = {"canary": ["gw03"], "control": ["gw01", "gw02"]}


def expectation(**kw: Any) -> Expectation:
    return TypeAdapter(Expectation).validate_python(kw)


def drill() -> DrillSpec:
    return DrillSpec.model_validate({
        "drill": "t", "targets": {"hosts": "gateways", "canary": {"count": 1}},
        "changes": [{"timeouts": {"udp": 3}}], "load": {"kind": "none"},
        "probe": {"client": "clients", "venue": "venues"}, "observe": {"duration_s": 5}})


def msg(via: str, dwell: float, i: int) -> Message:
    return Message(id=f"{via}{i}", verb="NEW", proto="tcp", sent=100.0 + i, acked=100.0 + i + dwell,
                   filled=None, attempts=1, accepted=100.0 + i, via=via)


def test_lanes_pair_by_name_and_refuse_uneven_ends() -> None:
    c = [Target(n, "netns", netns=n, via=f"gw{n[-2:]}") for n in ("client02", "client01")]
    v = [Target(n, "netns", netns=n) for n in ("venue01", "venue02")]
    assert [(a.name, b.name) for a, b in pair_targets(c, v, "load")] == [
        ("client01", "venue01"), ("client02", "venue02")]
    with pytest.raises(InvalidInput, match="2 source host"):
        pair_targets(c, v[:1], "load")


def test_a_group_expectation_is_judged_on_each_of_its_hosts() -> None:
    group = expectation(kind="metric", name="drops", host="gateways", metric="nfd_per_s",
                        stat="max", op=">", value=0)
    single = expectation(kind="metric", host="gw01", metric="ctr", stat="max", op="<", value=1)
    out = per_host([group, single], lambda p: ["gw02", "gw01"] if p == "gateways" else [p])
    assert [(e.host, e.name) for e in out] == [  # type: ignore[union-attr]
        ("gw01", "drops (gw01)"), ("gw02", "drops (gw02)"), ("gw01", None)]


def test_class_entries_on_a_pool_must_hold_on_every_host() -> None:
    e = expectation(kind="class_entries", pool="control", protocol="tcp", port=9001,
                    stat="max", op=">", value=0)
    result = ObservationResult(started=0.0, pools=POOLS,
                               class_hosts={"pool:control": ["gw01", "gw02"]},
                               class_series={("gw01", "tcp", 9001): [(1.0, 5)],
                                             ("gw02", "tcp", 9001): [(1.0, 0)]})
    v = judge(e, result, drill())
    assert not v.passed and v.observed == 0 and "gw02" in v.detail
    result.class_series[("gw02", "tcp", 9001)] = [(1.0, 7)]
    assert judge(e, result, drill()).passed


def test_canary_vs_control_compares_the_pools_messages() -> None:
    e = expectation(kind="canary_vs_control", proto="tcp", metric="dwell_ms",
                    quantile="p99", op="<", ratio=0.5)
    msgs = ([msg("gw03", 0.01, i) for i in range(20)]
            + [msg("gw01", 1.0, i) for i in range(20)] + [msg("gw02", 0.01, i) for i in range(20)])
    result = ObservationResult(started=0.0, pools=POOLS, messages=msgs)
    v = judge(e, result, drill())
    assert v.passed, v.detail
    assert "canary 10 over 20 messages, control 1000 over 40" in v.detail
    slow_canary = [msg("gw03", 2.0, i) for i in range(20)] + msgs[20:]
    assert not judge(e, ObservationResult(started=0.0, pools=POOLS, messages=slow_canary),
                     drill()).passed


class FakeLane:
    start_s = 0.5

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result

    def prepare(self) -> None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> dict[str, Any]:
        return self.result


def test_a_pooled_load_sums_the_lanes_and_names_a_failed_one() -> None:
    load = PooledLoad([FakeLane({"kind": "surge", "flows": 10, "completed": 9}),
                       FakeLane({"kind": "surge", "flows": 5, "error": "boom"})],
                      ["gw01", "gw02"])
    out = load.stop()
    assert out["flows"] == 15 and out["completed"] == 9 and out["error"] == "gw02: boom"
    assert [lane["via"] for lane in out["lanes"]] == ["gw01", "gw02"]


class FakeProbeLane:
    def __init__(self, via: str, osd_ms: float) -> None:
        self.via, self.osd_ms = via, osd_ms
        self.spec = drill().probe

    def live_osd_ms(self, now: float, horizon_s: float = 2.0) -> float:
        return self.osd_ms

    def messages(self) -> list[Message]:
        return []


def test_each_gateway_regime_sees_its_own_lanes_probe_signals() -> None:
    from ctdrill.lifecycle.observe import _LiveProbeSignals
    from ctdrill.probe.pool import ProbePool

    spec = drill().probe
    assert spec is not None
    lanes: list[Any] = [FakeProbeLane("gw01", 5.0), FakeProbeLane("gw02", 900.0)]
    live = _LiveProbeSignals(ProbePool(spec, lanes), ObservationResult(started=0.0))
    live.refresh(100.0)
    assert live.for_host("gw01") == (5.0, False)
    assert live.for_host("gw02") == (900.0, False)
    assert live.for_host("kernel") == (900.0, False)  # no lane: the pool's worst
