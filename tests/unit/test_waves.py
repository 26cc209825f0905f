"""Rolling waves, the pure part (engine/waves.py): wave sizes for counts, percents and
lists (Ansible's `serial`, percents rounded up), the name order, the play each wave
sends, and the guard decisions between waves (ceilings on changed hosts only, windows
after the host's wave, the halt regime, settling)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from ctdrill.engine.waves import (
    RolloutOutcome,
    Tally,
    Trip,
    WaveGuards,
    plan_waves,
    settled,
    telemetry_trip,
    wave_sizes,
    wave_vars,
)
from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.regime.states import Regime
from ctdrill.spec.models import Ceiling, DrillSpec, Rollout
from ctdrill.spec.schema import drill_schema

HOSTS = [f"gw{i:02d}" for i in range(1, 11)]


def rollout(**kw: Any) -> Rollout:
    return Rollout.model_validate(kw)


@pytest.mark.parametrize(("serial", "n", "sizes"), [
    (1, 4, [1, 1, 1, 1]),
    (3, 10, [3, 3, 3, 1]),
    (50, 4, [4]),
    ("25%", 4, [1, 1, 1, 1]),
    ("25%", 6, [2, 2, 2]),          # 1.5 rounded up (Ansible would round down to 1)
    ("30%", 10, [3, 3, 3, 1]),
    ("1%", 32, [1] * 32),           # never a wave of 0
    ("100%", 7, [7]),
    ([1, "25%", "100%"], 16, [1, 4, 11]),
    ([1, 2], 10, [1, 2, 2, 2, 2, 1]),  # the last entry repeats
    ([5, 1], 3, [3]),
    (2, 0, []),
], ids=str)
def test_wave_sizes(serial: Any, n: int, sizes: list[int]) -> None:
    assert wave_sizes(serial, n) == sizes
    assert sum(sizes) == n


def test_waves_go_in_name_order_whatever_the_inventory_order() -> None:
    shuffled = list(HOSTS)
    random.Random(7).shuffle(shuffled)
    waves = plan_waves(rollout(serial=[1, "30%"]), shuffled)
    assert waves == (("gw01",), ("gw02", "gw03", "gw04"), ("gw05", "gw06", "gw07"),
                     ("gw08", "gw09", "gw10"))
    assert plan_waves(rollout(serial=[1, "30%"]), sorted(HOSTS)) == waves
    assert plan_waves(rollout(serial=2), []) == ()


def test_each_host_is_in_exactly_one_wave() -> None:
    for serial in (1, 3, "10%", "33%", [2, "50%"], ["1%", 1, "100%"]):
        waves = plan_waves(rollout(serial=serial), HOSTS)
        flat = [h for w in waves for h in w]
        assert flat == HOSTS and all(waves), serial


@pytest.mark.parametrize("serial", [0, -1, "0%", "101%", "25", "25 %", "x%", [], [1, 0],
                                    True, 1.5, None])
def test_a_serial_that_is_not_a_count_or_a_share_is_refused(serial: Any) -> None:
    with pytest.raises(ValidationError):
        rollout(serial=serial)


def test_the_schema_judges_rollouts_as_validate_does() -> None:
    """The real consumer: python-jsonschema with `ctdrill schema`'s drill schema."""
    schema = Draft202012Validator(drill_schema())
    base = {"drill": "w", "targets": {"hosts": "gateways"},
            "changes": [{"timeouts": {"udp": 10}}]}
    cases = [{"serial": 1}, {"serial": "25%"}, {"serial": [1, "25%", "100%"]},
             {"serial": 2, "pause_s": 1.5, "halt_regime": "CT_PRESSURED"},
             {"serial": 0}, {"serial": "0%"}, {"serial": "101%"}, {"serial": []},
             {"serial": True}, {"serial": 1, "pause_s": -1}, {"serial": 1, "other": 1},
             {"serial": 1, "halt_regime": "CT_HEALTHY"}, {"pause_s": 1}]
    for case in cases:
        doc = {**base, "rollout": case}
        try:
            DrillSpec.model_validate(doc)
            valid = True
        except ValidationError:
            valid = False
        assert schema.is_valid(doc) == valid, case
    assert sum(schema.is_valid({**base, "rollout": c}) for c in cases) == 4


def test_the_first_play_arms_every_host_and_later_plays_carry_their_wave() -> None:
    per_host = {h: {"sysctl": {"k": "1"}, "nft": {"t": 1}, "revert": {"r": h}}
                for h in ("gw01", "gw02", "gw03", "venue")}
    waves = (("gw01",), ("gw02", "gw03"))
    first = wave_vars(per_host, waves, 0)
    assert set(first) == set(per_host)  # a host changed only by a step is armed too
    assert first["gw01"] == per_host["gw01"]
    for h in ("gw02", "gw03", "venue"):
        assert first[h] == {"sysctl": {}, "nft": None, "revert": {"r": h}}
    assert wave_vars(per_host, waves, 1) == {h: per_host[h] for h in ("gw02", "gw03")}


def window(count: int = 0, ctr: float = 0.0) -> WindowMetrics:
    return WindowMetrics(t=1.0, window_s=1.0, count=count, max=1000, buckets=64, ctr=ctr,
                         hcp95=1, chain_too_long_per_s=0.0, nfd_per_s=0.0,
                         nfd_fraction=0.0, new_flows_per_s=0.0, early_drop_per_s=0.0,
                         insert_failed_per_s=0.0, drops=0, table_full_events=0)


CEILING = Ceiling(hosts="gateways", metric="count", above=50)
GUARDS = WaveGuards([(CEILING, frozenset({"gw01", "gw02", "gw03"}))])


def test_only_changed_hosts_are_checked_and_only_after_their_wave() -> None:
    applied = {"gw01": 100.0}
    hot = window(count=80)
    assert GUARDS.window("gw02", hot, 200.0, applied) is None     # not changed yet
    assert GUARDS.window("gw01", hot, 99.0, applied) is None      # a window from before
    trip = GUARDS.window("gw01", hot, 100.0, applied)
    assert trip == Trip("ceiling count > 50", "gw01", "guard: count on gw01 is 80 > 50")
    assert GUARDS.window("gw01", window(count=50), 101.0, applied) is None  # not above


def test_a_ceiling_protects_only_the_hosts_its_pattern_selects() -> None:
    guards = WaveGuards([(Ceiling(hosts="gw02", metric="ctr", above=0.5),
                          frozenset({"gw02"}))])
    applied = {"gw01": 0.0, "gw02": 0.0}
    assert guards.window("gw01", window(ctr=0.9), 1.0, applied) is None
    trip = guards.window("gw02", window(ctr=0.9), 1.0, applied)
    assert trip is not None and trip.host == "gw02" and trip.guard == "ceiling ctr > 0.5"


def test_the_watched_hosts_are_those_a_guard_reads() -> None:
    rollout_hosts = ["gw01", "gw02", "gw03", "gw04"]
    assert GUARDS.watched(rollout_hosts) == ["gw01", "gw02", "gw03"]
    assert WaveGuards([]).watched(rollout_hosts) == []
    assert WaveGuards([], Regime.PRESSURED).watched(rollout_hosts) == rollout_hosts


def test_the_halt_regime_trips_at_that_regime_or_a_worse_one_on_changed_hosts() -> None:
    guards = WaveGuards([], Regime.PRESSURED)
    changed = {"gw01"}
    assert guards.regime("gw01", Regime.TIGHTENING, changed) is None
    assert guards.regime("gw02", Regime.SAFE_CONTAIN, changed) is None  # not changed yet
    for worse in (Regime.PRESSURED, Regime.SAFE_CONTAIN):
        trip = guards.regime("gw01", worse, changed)
        assert trip is not None and trip.guard == "regime >= CT_PRESSURED"
        assert trip.reason == f"guard: gw01 is in {worse.value} (rollout.halt_regime CT_PRESSURED)"
    assert WaveGuards([]).regime("gw01", Regime.SAFE_CONTAIN, changed) is None


def test_a_wave_settles_after_its_pause_once_every_checked_host_has_reported() -> None:
    assert settled(0.0, 0.0, set(), [])
    assert not settled(0.0, 0.0, {"gw01"}, ["gw01", "gw02"])
    assert settled(0.0, 0.0, {"gw01", "gw02"}, ["gw01", "gw02"])
    assert not settled(1.9, 2.0, {"gw01"}, ["gw01"])
    assert settled(2.0, 2.0, {"gw01", "gw09"}, ["gw01"])


def test_the_tally_keeps_window_counts_and_each_guarded_metrics_peak() -> None:
    tally = Tally(("count", "ctr"))
    for count in (3, 9, 4):
        tally.add("gw01", window(count=count, ctr=count / 10))
    assert tally.windows == {"gw01": 3}
    assert tally.peaks == {"gw01": {"count": 9, "ctr": 0.9}}


def test_the_outcome_names_the_waves_applied_and_the_guard_that_stopped_them() -> None:
    out = RolloutOutcome((("gw01",), ("gw02",), ("gw03",)))
    assert out.to_json() == {"waves": [["gw01"], ["gw02"], ["gw03"]], "applied": [],
                             "stopped": None}
    out.applied += [0, 1]
    out.stopped_after, out.trip = 1, telemetry_trip("gw02", "stalled")
    assert out.to_json()["stopped"] == {
        "wave": 1, "guard": "telemetry", "host": "gw02",
        "reason": "guard: gw02: telemetry stalled during the rollout; a guarded host "
                  "must stay observed"}
