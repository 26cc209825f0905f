"""Regime state machine, by example: each transition, the cause it records, the spec."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from typing import Any

import pytest
from pydantic import ValidationError

from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.regime import (
    ADVICE,
    Regime,
    RegimeConfig,
    RegimeInput,
    RegimeMachine,
    RegimeSpec,
    RegimeState,
    Transition,
    advice,
    run,
    step,
)
from ctdrill.spec.models import DrillSpec

H, T, P, SC = Regime.HEALTHY, Regime.TIGHTENING, Regime.PRESSURED, Regime.SAFE_CONTAIN
CFG = RegimeConfig()


def x(t: float, ctr: float = 0.1, hcp95: int = 1, nfd: float = 0.0, osd: float = 0.0,
      breach: bool = False) -> RegimeInput:
    return RegimeInput(t=t, ctr=ctr, hcp95=hcp95, nfd_per_s=nfd, osd_ms=osd, cdt_breach=breach)


def feed(m: RegimeMachine, t0: float, t1: float, dt: float = 0.5, **kw: Any) -> None:
    """Samples every dt from t0 up to, not including, t1."""
    t = t0
    while t < t1 - 1e-9:
        m.feed(x(t, **kw))
        t += dt


def cause(tr: Transition | None) -> tuple[Regime, Regime, str, float, float]:
    assert tr is not None
    return tr.from_state, tr.to_state, tr.signal, tr.threshold, tr.value


# --- states, defaults --------------------------------------------------------------


def test_state_values_and_levels() -> None:
    assert [r.value for r in Regime] == ["CT_HEALTHY", "CT_TIGHTENING", "CT_PRESSURED",
                                        "CT_SAFE_CONTAIN"]
    assert [r.level for r in Regime] == [0, 1, 2, 3]
    assert [r.lower() for r in Regime] == [H, H, T, P]
    assert isinstance(H, str) and H == "CT_HEALTHY"


def test_documented_defaults() -> None:
    c = RegimeConfig()
    assert (c.ctr_tightening_enter, c.ctr_tightening_exit) == (0.70, 0.60)
    assert (c.ctr_pressured_enter, c.ctr_pressured_exit, c.ctr_sustain_s) == (0.90, 0.80, 1.0)
    assert (c.hcp95_tightening_enter, c.hcp95_tightening_exit) == (6, 5)
    assert (c.osd_tightening_enter_ms, c.osd_tightening_exit_ms) == (50.0, 20.0)
    assert (c.nfd_pressured_enter_per_s, c.nfd_pressured_exit_per_s, c.nfd_quiet_s) == (
        1.0, 0.5, 2.0)
    assert (c.episodes, c.episode_window_s) == (2, 60.0)
    assert [c.dwell_s(r) for r in Regime] == [0.0, 3.0, 5.0, 30.0]


# --- escalation ---------------------------------------------------------------------


@pytest.mark.parametrize(("kw", "signal", "threshold", "value"), [
    ({"ctr": 0.70}, "ctr", 0.70, 0.70),
    ({"hcp95": 6}, "hcp95", 6, 6),
    ({"osd": 50.0}, "osd_ms", 50.0, 50.0),
    ({"ctr": 0.75, "osd": 80.0}, "ctr", 0.70, 0.75),  # ctr first when several cross
])
def test_healthy_to_tightening_records_the_signal(kw: dict[str, Any], signal: str,
                                                  threshold: float, value: float) -> None:
    state, tr = step(RegimeState(), x(1.0, **kw), CFG)
    assert cause(tr) == (H, T, signal, threshold, value)
    assert tr is not None and tr.t == 1.0 and tr.sample == x(1.0, **kw) and tr.escalation
    assert state.regime is T and state.since == 1.0


@pytest.mark.parametrize("kw", [{"ctr": 0.6999}, {"hcp95": 5}, {"osd": 49.9}, {"nfd": 0.99}])
def test_just_below_enter_thresholds_nothing_happens(kw: dict[str, Any]) -> None:
    assert run([x(t, **kw) for t in range(20)]) == []


def test_ctr_pressure_needs_sustain() -> None:
    m = RegimeMachine()
    assert cause(m.feed(x(0.0, ctr=0.95)))[:3] == (H, T, "ctr")  # not yet sustained
    assert m.feed(x(0.5, ctr=0.95)) is None
    assert cause(m.feed(x(1.0, ctr=0.95))) == (T, P, "ctr", 0.90, 0.95)


def test_ctr_dip_below_pressured_enter_restarts_sustain() -> None:
    m = RegimeMachine()
    m.feed(x(0.0, ctr=0.95))
    m.feed(x(0.6, ctr=0.89))  # resets the timer
    m.feed(x(1.0, ctr=0.95))
    m.feed(x(1.9, ctr=0.95))
    assert m.regime is T
    assert cause(m.feed(x(2.0, ctr=0.95)))[:3] == (T, P, "ctr")


def test_zero_sustain_skips_straight_to_pressured() -> None:
    cfg = RegimeConfig(ctr_sustain_s=0.0)
    assert cause(step(RegimeState(), x(0.0, ctr=0.9), cfg)[1]) == (H, P, "ctr", 0.9, 0.9)


def test_drops_while_healthy_go_straight_to_pressured() -> None:
    state, tr = step(RegimeState(), x(3.0, nfd=1.0), CFG)
    assert cause(tr) == (H, P, "nfd_per_s", 1.0, 1.0)
    assert state.episodes == (3.0,)


def test_drops_take_precedence_over_sustained_ctr() -> None:
    m = RegimeMachine()
    m.feed(x(0.0, ctr=0.95))
    assert cause(m.feed(x(1.0, ctr=0.95, nfd=4.0))) == (T, P, "nfd_per_s", 1.0, 4.0)


def test_repeated_episodes_with_tail_breach_go_to_safe_contain() -> None:
    m = RegimeMachine()
    m.feed(x(0.0, nfd=3.0))                     # episode 1
    feed(m, 0.5, 20.0)                          # calm: back to healthy
    assert m.regime is H
    tr = m.feed(x(20.0, nfd=3.0, breach=True))  # episode 2, with breach: skips PRESSURED
    assert cause(tr) == (H, SC, "pressure_episodes", 2, 2)
    assert tr is not None and "cdt_breach" in tr.detail


def test_one_episode_with_breach_is_only_pressure() -> None:
    assert cause(run([x(0.0, nfd=3.0, breach=True)])[0])[:2] == (H, P)


def test_a_long_episode_counts_once() -> None:
    m = RegimeMachine()
    feed(m, 0.0, 30.0, nfd=3.0)                 # one episode, drops all along
    feed(m, 30.0, 40.0, nfd=3.0, breach=True)
    assert [(tr.from_state, tr.to_state) for tr in m.transitions] == [(H, P)]
    assert m.state.episodes == (0.0,)


def test_episodes_outside_the_window_do_not_count() -> None:
    m = RegimeMachine(RegimeConfig(episode_window_s=10.0))
    m.feed(x(0.0, nfd=3.0))
    feed(m, 0.5, 12.0)
    assert m.regime is H
    assert cause(m.feed(x(12.0, nfd=3.0, breach=True)))[:2] == (H, P)


def test_breach_arriving_later_while_pressured_escalates() -> None:
    m = RegimeMachine()
    m.feed(x(0.0, nfd=3.0))
    feed(m, 0.5, 20.0)
    m.feed(x(20.0, nfd=3.0))       # episode 2, no breach yet
    assert m.regime is P
    m.feed(x(20.5, ctr=0.85))      # pressure still held by CTR
    assert cause(m.feed(x(21.0, ctr=0.85, breach=True)))[:3] == (P, SC, "pressure_episodes")


def test_breach_without_pressure_does_not_escalate() -> None:
    m = RegimeMachine()
    m.feed(x(0.0, nfd=3.0))
    feed(m, 0.5, 20.0)
    m.feed(x(20.0, nfd=3.0))
    feed(m, 20.5, 24.0)            # pressure gone (not yet stepped down: dwell)
    assert m.regime is P
    assert m.feed(x(24.0, breach=True)) is None


# --- de-escalation ----------------------------------------------------------------


def test_tightening_steps_down_when_its_signal_crosses_exit_after_dwell() -> None:
    m = RegimeMachine()
    m.feed(x(0.0, hcp95=7))
    feed(m, 0.5, 10.0, hcp95=5)            # in the band: holds
    assert m.regime is T
    assert cause(m.feed(x(10.0, hcp95=4))) == (T, H, "hcp95", 5, 4)


def test_dwell_is_recorded_when_it_is_what_held_the_state() -> None:
    m = RegimeMachine()
    m.feed(x(0.0, osd=100.0))
    feed(m, 0.5, 3.0)                      # calm at once, dwell 3 s
    assert m.regime is T
    assert cause(m.feed(x(3.0))) == (T, H, "dwell_s", 3.0, 3.0)


def test_pressure_held_by_ctr_until_below_exit() -> None:
    m = RegimeMachine()
    m.feed(x(0.0, ctr=0.95, nfd=2.0))
    feed(m, 0.5, 10.0, ctr=0.80)           # at exit: still held
    assert m.regime is P
    assert m.state.held_by == ("ctr",)
    assert cause(m.feed(x(10.0, ctr=0.79))) == (P, T, "ctr", 0.80, 0.79)
    assert m.regime is T and m.state.held_by == ("ctr",)  # 0.79 still holds TIGHTENING


def test_pressure_held_by_drops_until_quiet() -> None:
    m = RegimeMachine()
    m.feed(x(0.0, nfd=2.0))
    feed(m, 0.5, 10.0, nfd=0.5)            # in the NFD band: not quiet
    assert m.regime is P
    feed(m, 10.0, 12.0, nfd=0.4)           # quiet since 10.0, for 1.5 s at 11.5
    assert m.regime is P
    assert cause(m.feed(x(12.0, nfd=0.0))) == (P, T, "nfd_quiet_s", 2.0, 2.0)


def test_safe_contain_holds_on_breach_then_steps_down_one_level_at_a_time() -> None:
    m = RegimeMachine()
    m.feed(x(0.0, nfd=3.0))
    feed(m, 0.5, 20.0)
    m.feed(x(20.0, nfd=3.0, breach=True))
    assert m.regime is SC
    feed(m, 20.5, 60.0, breach=True)       # dwell long passed, breach holds it
    assert m.regime is SC
    assert cause(m.feed(x(60.0))) == (SC, P, "cdt_breach", 1.0, 0.0)
    feed(m, 60.5, 65.0)
    assert m.regime is P
    assert cause(m.feed(x(65.0))) == (P, T, "dwell_s", 5.0, 5.0)
    feed(m, 65.5, 68.0)
    assert cause(m.feed(x(68.0))) == (T, H, "dwell_s", 3.0, 3.0)
    assert [(tr.from_state, tr.to_state) for tr in m.transitions] == [
        (H, P), (P, T), (T, H), (H, SC), (SC, P), (P, T), (T, H)]


def test_safe_contain_holds_while_pressure_is_held_even_without_breach() -> None:
    m = RegimeMachine(RegimeConfig(episodes=1))
    m.feed(x(0.0, nfd=3.0, breach=True))
    assert m.regime is SC
    feed(m, 0.5, 100.0, ctr=0.85)
    assert m.regime is SC and m.state.held_by == ("ctr",)
    assert cause(m.feed(x(100.0, ctr=0.5))) == (SC, P, "ctr", 0.8, 0.5)


def test_escalation_ignores_dwell() -> None:
    m = RegimeMachine()
    m.feed(x(0.0, ctr=0.75))
    assert cause(m.feed(x(0.1, ctr=0.75, nfd=1.5)))[:2] == (T, P)


# --- inputs, records, advice -------------------------------------------------------


def test_time_going_back_is_refused() -> None:
    state, _ = step(RegimeState(), x(5.0), CFG)
    assert step(state, x(5.0), CFG)[1] is None  # equal times are fine
    with pytest.raises(ValueError, match="went back"):
        step(state, x(4.9), CFG)


@pytest.mark.parametrize("kw", [{"ctr": float("nan")}, {"ctr": -0.1}, {"nfd_per_s": -1.0},
                                {"osd_ms": float("inf")}, {"hcp95": -1}, {"hcp95": True},
                                {"t": float("nan")}])
def test_bad_inputs_are_refused(kw: dict[str, Any]) -> None:
    base: dict[str, Any] = {"t": 0.0, "ctr": 0.1}
    with pytest.raises(ValueError):
        RegimeInput(**{**base, **kw})


def test_input_from_window_metrics() -> None:
    w = WindowMetrics(t=7.0, window_s=1, count=95, max=100, buckets=100, ctr=0.95, hcp95=5,
                      chain_too_long_per_s=0, nfd_per_s=3.0, nfd_fraction=0.1,
                      new_flows_per_s=0, early_drop_per_s=0, insert_failed_per_s=0, drops=3,
                      table_full_events=1)
    assert RegimeInput.from_window(w, osd_ms=12.0, cdt_breach=True) == RegimeInput(
        t=7.0, ctr=0.95, hcp95=5, nfd_per_s=3.0, osd_ms=12.0, cdt_breach=True)


def test_transition_json_round_trips_and_carries_advice() -> None:
    tr = run([x(0.0, nfd=2.0)])[0]
    data = json.loads(json.dumps(tr.to_json()))
    assert data["from_state"] == "CT_HEALTHY" and data["to_state"] == "CT_PRESSURED"
    assert (data["signal"], data["threshold"], data["value"]) == ("nfd_per_s", 1.0, 2.0)
    assert data["sample"]["nfd_per_s"] == 2.0
    assert data["advice"]["retry"] == "backoff" and data["advice"]["burst_damping"] is True
    assert Transition.from_json(data) == tr
    state = step(RegimeState(), x(0.0, nfd=2.0), CFG)[0]
    assert json.loads(json.dumps(state.to_json()))["regime"] == "CT_PRESSURED"


def test_advice_per_regime_is_cumulative() -> None:
    assert set(ADVICE) == set(Regime)
    assert all(advice(r).regime is r for r in Regime)
    assert advice(H).actions == ("run normally",) and not advice(H).pacing
    assert advice(T).pacing and advice(T).retry == "restrained"
    assert advice(P).burst_damping and advice(P).preopen_flows and advice(P).retry == "backoff"
    sc = advice(SC)
    assert sc.path_class == "clean" and sc.freeze_nonessential_new_flows
    flags = ("pacing", "burst_damping", "preopen_flows", "freeze_nonessential_new_flows")
    for lower, higher in zip(Regime, list(Regime)[1:], strict=False):
        for flag in flags:
            assert getattr(advice(higher), flag) >= getattr(advice(lower), flag)
    with pytest.raises(TypeError):
        ADVICE[H] = sc  # type: ignore[index]


def test_machine_keeps_transitions_and_state_is_immutable() -> None:
    m = RegimeMachine()
    m.feed(x(0.0, ctr=0.75))
    m.transitions.clear()
    assert len(m.transitions) == 1
    with pytest.raises(FrozenInstanceError):
        m.state.regime = H  # type: ignore[misc]


# --- configuration and spec ---------------------------------------------------------


@pytest.mark.parametrize(("kw", "message"), [
    ({"ctr_tightening_exit": 0.7}, "ctr_tightening_exit (0.7) must be below"),
    ({"ctr_pressured_exit": 0.95}, "ctr_pressured_exit (0.95) must be below"),
    ({"hcp95_tightening_exit": 6}, "hcp95_tightening_exit (6) must be below"),
    ({"osd_tightening_exit_ms": 60.0}, "osd_tightening_exit_ms (60) must be below"),
    ({"nfd_pressured_exit_per_s": 1.0}, "nfd_pressured_exit_per_s (1) must be below"),
    ({"ctr_tightening_enter": 0.95, "ctr_tightening_exit": 0.5},
     "ctr_tightening_enter (0.95) must not exceed ctr_pressured_enter"),
    ({"ctr_tightening_exit": 0.85, "ctr_tightening_enter": 0.88},
     "ctr_tightening_exit (0.85) must not exceed ctr_pressured_exit"),
    ({"dwell_pressured_s": -1.0}, "dwell_pressured_s must be >= 0"),
    ({"episodes": 0}, "episodes must be >= 1"),
    ({"nfd_quiet_s": float("inf")}, "nfd_quiet_s must be finite"),
])
def test_config_refuses_inconsistent_settings(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RegimeConfig(**kw)


def test_spec_defaults_match_config_and_to_config() -> None:
    assert RegimeSpec().to_config() == RegimeConfig()
    cfg = RegimeSpec(dwell_pressured_s=1.5, episodes=3).to_config()
    assert (cfg.dwell_pressured_s, cfg.episodes) == (1.5, 3)


@pytest.mark.parametrize("kw", [
    {"ctr_tightening_exit": 0.8},          # exit above enter
    {"hcp95_tightening_enter": 5},         # enter == exit
    {"ctr_pressured_enter": 1.2},
    {"dwell_tightening_s": -1},
    {"nfd_quiet_s": float("inf")},
    {"episodes": 0},
    {"unknown": 1},
])
def test_spec_refuses_bad_settings(kw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RegimeSpec.model_validate(kw)


def test_drill_spec_has_a_regime_with_defaults_and_a_described_schema() -> None:
    base: dict[str, Any] = {"drill": "t", "targets": {"hosts": "gw"}}
    assert DrillSpec.model_validate(base).regime == RegimeSpec()
    spec = DrillSpec.model_validate({**base, "regime": {"dwell_safe_contain_s": 10}})
    assert spec.regime.to_config().dwell_safe_contain_s == 10.0
    schema = DrillSpec.model_json_schema()
    props = schema["$defs"]["RegimeSpec"]["properties"]
    assert set(props) == set(RegimeSpec.model_fields)
    assert all(p.get("description") for p in props.values())
    assert props["ctr_tightening_enter"]["default"] == 0.7
