"""Regime state machine, by property: hysteresis, dwell, monotone pressure, recovery, chain.

Configurations are drawn at random (valid ones) as well as the samples, so the
properties hold for any settings a spec can give, not just the defaults.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from ctdrill.regime import (
    Regime,
    RegimeConfig,
    RegimeInput,
    RegimeMachine,
    RegimeState,
    Transition,
    step,
)

H, T, P, SC = Regime.HEALTHY, Regime.TIGHTENING, Regime.PRESSURED, Regime.SAFE_CONTAIN
FAST = settings(max_examples=80, deadline=None)


@st.composite
def configs(draw: st.DrawFn, grid: float | None = None) -> RegimeConfig:
    """Valid settings; with `grid`, every time setting is a multiple of it."""
    def seconds(hi: float) -> float:
        if grid is not None:
            return draw(st.integers(0, int(hi / grid))) * grid
        return draw(st.floats(0.0, hi))

    t_exit = round(draw(st.floats(0.2, 0.5)), 3)
    t_enter = t_exit + round(draw(st.floats(0.02, 0.2)), 3)
    p_exit = max(t_exit, round(draw(st.floats(0.3, 0.85)), 3))
    p_enter = max(t_enter, p_exit + round(draw(st.floats(0.02, 0.1)), 3))
    hcp_exit = draw(st.integers(1, 8))
    osd_exit = round(draw(st.floats(1.0, 100.0)), 1)
    nfd_exit = round(draw(st.floats(0.1, 2.0)), 2)
    return RegimeConfig(
        ctr_tightening_enter=t_enter, ctr_tightening_exit=t_exit,
        ctr_pressured_enter=p_enter, ctr_pressured_exit=p_exit,
        ctr_sustain_s=seconds(3.0),
        hcp95_tightening_enter=hcp_exit + draw(st.integers(1, 3)),
        hcp95_tightening_exit=hcp_exit,
        osd_tightening_enter_ms=osd_exit + round(draw(st.floats(1.0, 100.0)), 1),
        osd_tightening_exit_ms=osd_exit,
        nfd_pressured_enter_per_s=nfd_exit + round(draw(st.floats(0.1, 3.0)), 2),
        nfd_pressured_exit_per_s=nfd_exit,
        nfd_quiet_s=seconds(3.0),
        episodes=draw(st.integers(1, 3)),
        episode_window_s=draw(st.floats(60.0, 300.0)),
        dwell_tightening_s=seconds(10.0),
        dwell_pressured_s=seconds(10.0),
        dwell_safe_contain_s=seconds(10.0),
    )


def around(values: Sequence[float], lo: float, hi: float) -> st.SearchStrategy[float]:
    """Mostly thresholds and their neighbours (where the machine decides), some anywhere."""
    points = sorted({v + d for v in values for d in (-0.01, 0.0, 0.01) if lo <= v + d <= hi})
    return st.one_of(st.sampled_from(points), st.floats(lo, hi))


def sample_at(cfg: RegimeConfig) -> st.SearchStrategy[tuple[float, float, int, float, float,
                                                            bool]]:
    """(gap to the previous sample, ctr, hcp95, nfd, osd, breach), anywhere."""
    return st.tuples(
        st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 4.0)),
        around([cfg.ctr_tightening_exit, cfg.ctr_tightening_enter, cfg.ctr_pressured_exit,
                cfg.ctr_pressured_enter], 0.0, 1.0),
        st.integers(0, cfg.hcp95_tightening_enter + 2),
        around([0.0, cfg.nfd_pressured_exit_per_s, cfg.nfd_pressured_enter_per_s], 0.0, 10.0),
        around([cfg.osd_tightening_exit_ms, cfg.osd_tightening_enter_ms], 0.0, 500.0),
        st.booleans(),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[RegimeConfig, list[RegimeInput]]:
    cfg = draw(configs())
    rows = draw(st.lists(sample_at(cfg), max_size=150))
    t, out = 0.0, []
    for gap, ctr, hcp, nfd, osd, breach in rows:
        t += gap
        out.append(RegimeInput(t=t, ctr=ctr, hcp95=hcp, nfd_per_s=nfd, osd_ms=osd,
                               cdt_breach=breach))
    return cfg, out


def drive(cfg: RegimeConfig, inputs: Sequence[RegimeInput]) -> list[tuple[RegimeState,
                                                                           Transition | None]]:
    """(state before, transition) per sample."""
    state, out = RegimeState(), []
    for x in inputs:
        new, tr = step(state, x, cfg)
        out.append((state, tr))
        state = new
    return out


def calm(t: float) -> RegimeInput:
    return RegimeInput(t=t, ctr=0.0, hcp95=0)


def reach(target: Regime, cfg: RegimeConfig) -> tuple[RegimeMachine, float]:
    """A machine driven into `target` by real samples, and the time of its last sample."""
    m = RegimeMachine(cfg)
    if target is T:
        m.feed(RegimeInput(t=0.0, ctr=0.0, hcp95=cfg.hcp95_tightening_enter))
        return m, 0.0
    if target is P:
        m.feed(RegimeInput(t=0.0, ctr=0.0, nfd_per_s=cfg.nfd_pressured_enter_per_s))
        return m, 0.0
    t = 0.0
    if target is SC:
        for episode in range(cfg.episodes):
            m.feed(RegimeInput(t=t, ctr=0.0, nfd_per_s=cfg.nfd_pressured_enter_per_s,
                               cdt_breach=episode == cfg.episodes - 1))
            if m.regime is SC:
                break
            while m.regime is not H:
                t += 0.5
                m.feed(calm(t))
            t += 0.5
    assert m.regime is target
    return m, t


# (1) no flapping inside the hysteresis bands ----------------------------------------


@FAST
@given(st.data())
def test_no_transition_while_signals_stay_in_their_bands(data: st.DataObject) -> None:
    cfg = data.draw(configs())
    target = data.draw(st.sampled_from(list(Regime)))
    m, t = reach(target, cfg)
    ctr_band = ((cfg.ctr_tightening_exit, cfg.ctr_tightening_enter) if target.level <= 1
                else (cfg.ctr_pressured_exit, cfg.ctr_pressured_enter))
    rows = data.draw(st.lists(st.tuples(
        st.floats(0.0, 5.0),
        st.floats(*ctr_band, exclude_max=True),
        st.integers(cfg.hcp95_tightening_exit, cfg.hcp95_tightening_enter - 1),
        st.floats(cfg.nfd_pressured_exit_per_s, cfg.nfd_pressured_enter_per_s,
                  exclude_max=True),
        st.floats(cfg.osd_tightening_exit_ms, cfg.osd_tightening_enter_ms, exclude_max=True),
        st.booleans() if target is SC else st.just(False),
    ), min_size=1, max_size=60))
    before = len(m.transitions)
    for gap, ctr, hcp, nfd, osd, breach in rows:
        t += gap
        m.feed(RegimeInput(t=t, ctr=ctr, hcp95=hcp, nfd_per_s=nfd, osd_ms=osd,
                           cdt_breach=breach))
    assert m.transitions[before:] == []
    assert m.regime is target


# (2) dwell always respected ----------------------------------------------------------


@FAST
@given(scenarios())
def test_no_de_escalation_before_the_dwell(scenario: tuple[RegimeConfig,
                                                           list[RegimeInput]]) -> None:
    cfg, inputs = scenario
    entered = 0.0
    for before, tr in drive(cfg, inputs):
        if tr is None:
            continue
        assert before.since == entered
        if not tr.escalation:
            assert tr.to_state is tr.from_state.lower(), "one level at a time"
            assert tr.t - entered >= cfg.dwell_s(tr.from_state)
        entered = tr.t


# (3) monotone pressure never de-escalates --------------------------------------------


@FAST
@given(st.data())
def test_non_decreasing_pressure_never_de_escalates(data: st.DataObject) -> None:
    cfg = data.draw(configs())
    n = data.draw(st.integers(1, 120))
    gaps = data.draw(st.lists(st.floats(0.0, 3.0), min_size=n, max_size=n))
    steps = st.lists(st.one_of(st.just(0.0), st.floats(0.0, 0.2)), min_size=n, max_size=n)
    d_ctr, d_nfd, d_osd = data.draw(steps), data.draw(steps), data.draw(steps)
    d_hcp = data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    breach_from = data.draw(st.integers(0, n + 1))
    t = ctr = nfd = osd = 0.0
    hcp = 0
    m = RegimeMachine(cfg)
    for i in range(n):
        t, ctr, hcp = t + gaps[i], min(1.0, ctr + d_ctr[i]), hcp + d_hcp[i]
        nfd, osd = nfd + 10 * d_nfd[i], osd + 100 * d_osd[i]
        m.feed(RegimeInput(t=t, ctr=ctr, hcp95=hcp, nfd_per_s=nfd, osd_ms=osd,
                           cdt_breach=i >= breach_from))
    assert all(tr.escalation for tr in m.transitions)


# (4) back to HEALTHY once pressure ends and the dwells pass ----------------------------


def calm_tail(cfg: RegimeConfig, t0: float, gaps: Sequence[float],
              values: Sequence[tuple[float, int, float, float]], until: float,
              ) -> list[RegimeInput]:
    """Samples with every signal below its exit threshold, from t0 to past `until`."""
    out, t, i = [], t0, 0
    while t <= until:
        f_ctr, hcp, f_nfd, f_osd = values[i % len(values)]
        out.append(RegimeInput(
            t=t, ctr=f_ctr * min(cfg.ctr_tightening_exit, cfg.ctr_pressured_exit),
            hcp95=hcp, nfd_per_s=f_nfd * cfg.nfd_pressured_exit_per_s,
            osd_ms=f_osd * cfg.osd_tightening_exit_ms))
        t += gaps[i % len(gaps)]
        i += 1
    return out


def calm_values(cfg: RegimeConfig) -> st.SearchStrategy[list[tuple[float, int, float, float]]]:
    below = st.floats(0.0, 1.0, exclude_max=True)
    return st.lists(st.tuples(below, st.integers(0, cfg.hcp95_tightening_exit - 1), below,
                              below), min_size=1, max_size=10)


def check_recovery(cfg: RegimeConfig, prefix: list[RegimeInput], tail: list[RegimeInput],
                   slack: float) -> None:
    m = RegimeMachine(cfg)
    for x in prefix:
        m.feed(x)
    start, t0 = m.regime, tail[0].t
    bound = (t0 + cfg.nfd_quiet_s + sum(cfg.dwell_s(r) for r in Regime if r.level <= start.level)
             + slack)
    healthy_at = t0 if start is H else None
    for x in tail:
        tr = m.feed(x)
        if tr is not None:
            assert not tr.escalation
            assert healthy_at is None, "left HEALTHY again while calm"
            if tr.to_state is H:
                healthy_at = x.t
    assert healthy_at is not None and healthy_at <= bound
    assert m.regime is H


@FAST
@given(st.data())
def test_returns_to_healthy_after_pressure_ends(data: st.DataObject) -> None:
    """Bound: NFD quiet + the dwells of the regimes on the way down + one sample gap per
    step, because each step happens on a sample and the next dwell counts from it."""
    cfg, prefix = data.draw(scenarios())
    gaps = data.draw(st.lists(st.floats(0.01, 2.0), min_size=1, max_size=10))
    t0 = (prefix[-1].t if prefix else 0.0) + data.draw(st.floats(0.0, 2.0))
    until = t0 + cfg.nfd_quiet_s + 3 * 10.0 + 3 * max(gaps) + 1.0
    tail = calm_tail(cfg, t0, gaps, data.draw(calm_values(cfg)), until)
    check_recovery(cfg, prefix, tail, slack=3 * max(gaps))


@FAST
@given(st.data())
def test_returns_to_healthy_within_dwells_plus_one_sample_on_a_grid(
        data: st.DataObject) -> None:
    """With a fixed sample period that divides every dwell, the bound is the sum of the
    dwells (NFD quiet included) plus one sample."""
    dt = 0.25
    cfg = data.draw(configs(grid=dt))
    rows = data.draw(st.lists(sample_at(cfg), max_size=120))
    prefix = [RegimeInput(t=i * dt, ctr=ctr, hcp95=hcp, nfd_per_s=nfd, osd_ms=osd,
                          cdt_breach=breach)
              for i, (_, ctr, hcp, nfd, osd, breach) in enumerate(rows)]
    n0 = len(prefix)
    until = n0 * dt + cfg.nfd_quiet_s + 30.0 + 1.0
    tail = calm_tail(cfg, n0 * dt, [dt], data.draw(calm_values(cfg)), until)  # exact: 0.25
    check_recovery(cfg, prefix, tail, slack=dt)


# (5) transitions form a chain of distinct states ---------------------------------------


@FAST
@given(scenarios())
def test_transitions_form_a_consistent_chain(scenario: tuple[RegimeConfig,
                                                             list[RegimeInput]]) -> None:
    cfg, inputs = scenario
    m = RegimeMachine(cfg)
    for x in inputs:
        m.feed(x)
    current, last_t = H, float("-inf")
    for tr in m.transitions:
        assert tr.from_state is not tr.to_state
        assert tr.from_state is current
        assert tr.t >= last_t
        current, last_t = tr.to_state, tr.t
    assert m.regime is current
