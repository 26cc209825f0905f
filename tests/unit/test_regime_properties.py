"""Regime state machine, by property: hysteresis, dwell, monotone pressure, recovery, chain.

Configurations are drawn at random (valid ones) as well as the samples, so the
properties hold for any settings a spec can give, not just the defaults. Samples come
in phases (a few samples with each signal in one range: below exit, in the band, over
enter), because independent random values rarely let every signal release at once and
so would almost never exercise de-escalation.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from ctdrill.regime import Regime, RegimeConfig, RegimeInput, RegimeMachine

H, T, P, SC = Regime.HEALTHY, Regime.TIGHTENING, Regime.PRESSURED, Regime.SAFE_CONTAIN
FAST = settings(max_examples=80, deadline=None)
MAX_DWELL = 10.0


@st.composite
def configs(draw: st.DrawFn, grid: float | None = None) -> RegimeConfig:
    """Valid settings; with `grid`, every time setting is a multiple of it and every
    dwell at least one grid step."""
    def seconds(hi: float, dwell: bool = False) -> float:
        if grid is not None:
            return draw(st.integers(int(dwell), int(hi / grid))) * grid
        return draw(st.one_of(st.just(0.0), st.floats(0.0, hi)))

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
        dwell_tightening_s=seconds(MAX_DWELL, dwell=True),
        dwell_pressured_s=seconds(MAX_DWELL, dwell=True),
        dwell_safe_contain_s=seconds(MAX_DWELL, dwell=True),
    )


def span(lo: float, hi: float) -> st.SearchStrategy[float]:
    """[lo, hi) with its lower edge (where a `< exit` test decides) drawn often."""
    return st.one_of(st.just(lo), st.floats(lo, hi, exclude_max=True))


def ranges(cfg: RegimeConfig) -> dict[str, list[tuple[float, float]]]:
    """Per signal: [below exit, hysteresis band(s), over enter] as half-open ranges
    (empty ones left out: tightening and pressure may share a CTR threshold)."""
    table: dict[str, list[tuple[float, float]]] = {
        "ctr": [(0.0, cfg.ctr_tightening_exit),
                (cfg.ctr_tightening_exit, cfg.ctr_tightening_enter),
                (cfg.ctr_tightening_enter, cfg.ctr_pressured_enter),
                (cfg.ctr_pressured_exit, cfg.ctr_pressured_enter),
                (cfg.ctr_pressured_enter, 1.0 + 1e-9)],
        "hcp95": [(0, cfg.hcp95_tightening_exit),
                  (cfg.hcp95_tightening_exit, cfg.hcp95_tightening_enter),
                  (cfg.hcp95_tightening_enter, cfg.hcp95_tightening_enter + 4)],
        "nfd_per_s": [(0.0, cfg.nfd_pressured_exit_per_s),
                      (cfg.nfd_pressured_exit_per_s, cfg.nfd_pressured_enter_per_s),
                      (cfg.nfd_pressured_enter_per_s, 3 * cfg.nfd_pressured_enter_per_s)],
        "osd_ms": [(0.0, cfg.osd_tightening_exit_ms),
                   (cfg.osd_tightening_exit_ms, cfg.osd_tightening_enter_ms),
                   (cfg.osd_tightening_enter_ms, 3 * cfg.osd_tightening_enter_ms)],
    }
    return {name: [(lo, hi) for lo, hi in rs if lo < hi] for name, rs in table.items()}


def value_in(signal: str, lo: float, hi: float) -> st.SearchStrategy[float] | st.SearchStrategy[
        int]:
    if signal == "hcp95":
        return st.integers(int(lo), int(hi) - 1)
    return span(lo, hi)


def _pick(rng: random.Random, signal: str, lo: float, hi: float) -> float:
    """A value in [lo, hi): the lower edge (where `< exit` decides) a third of the time."""
    if signal == "hcp95":
        return rng.randrange(int(lo), int(hi))
    return lo if rng.random() < 1 / 3 else min(rng.uniform(lo, hi), math.nextafter(hi, lo))


@st.composite
def phase(draw: st.DrawFn, cfg: RegimeConfig, t: float) -> list[RegimeInput]:
    """A run of samples with each signal kept in one range (calm drawn most often).

    Hypothesis draws the shape (ranges, length, spacing); a seeded RNG fills in the
    values, which keeps a 150-sample scenario cheap to generate.
    """
    picks = {name: draw(st.one_of(st.just(rs[0]), st.sampled_from(rs)))
             for name, rs in ranges(cfg).items()}
    breach = draw(st.sampled_from(["off", "off", "on", "mixed"]))
    n = draw(st.integers(1, 25))
    gap = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    out = []
    for _ in range(n):
        t += gap * rng.choice([0.0, 1.0, 1.0, 1.0, rng.uniform(0.0, 3.0)])
        v = {name: _pick(rng, name, lo, hi) for name, (lo, hi) in picks.items()}
        flag = breach == "on" or (breach == "mixed" and rng.random() < 0.5)
        out.append(RegimeInput(t=t, ctr=float(v["ctr"]), hcp95=int(v["hcp95"]),
                               nfd_per_s=float(v["nfd_per_s"]), osd_ms=float(v["osd_ms"]),
                               cdt_breach=flag))
    return out


@st.composite
def samples(draw: st.DrawFn, cfg: RegimeConfig, max_phases: int = 8) -> list[RegimeInput]:
    out: list[RegimeInput] = []
    for _ in range(draw(st.integers(0, max_phases))):
        out += draw(phase(cfg, out[-1].t if out else 0.0))
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[RegimeConfig, list[RegimeInput]]:
    cfg = draw(configs())
    return cfg, draw(samples(cfg))


def reach(target: Regime, cfg: RegimeConfig) -> tuple[RegimeMachine, float]:
    """A machine driven into `target` by real samples, and the time of its last sample."""
    m, t = RegimeMachine(cfg), 0.0
    if target is T:
        m.feed(RegimeInput(t=t, ctr=0.0, hcp95=cfg.hcp95_tightening_enter))
    elif target is P:
        m.feed(RegimeInput(t=t, ctr=0.0, nfd_per_s=cfg.nfd_pressured_enter_per_s))
    elif target is SC:
        for episode in range(cfg.episodes):
            if episode:
                give_up = t + cfg.nfd_quiet_s + 3 * MAX_DWELL + 10.0  # fail, never hang
                while m.regime is not H and t < give_up:
                    t += 0.5
                    m.feed(RegimeInput(t=t, ctr=0.0))
                t += 0.5
            m.feed(RegimeInput(t=t, ctr=0.0, nfd_per_s=cfg.nfd_pressured_enter_per_s,
                               cdt_breach=episode == cfg.episodes - 1))
    assert m.regime is target
    return m, t


# (1) no flapping inside the hysteresis bands ----------------------------------------


@FAST
@given(st.data())
def test_no_transition_while_signals_stay_in_their_bands(data: st.DataObject) -> None:
    """Once in a regime, signals that wander inside their bands (or below exit) while
    at least one of the regime's holders stays in its band never move it, however long."""
    cfg = data.draw(configs())
    target = data.draw(st.sampled_from(list(Regime)))
    m, t = reach(target, cfg)
    band: dict[str, tuple[float, float]] = {
        "ctr": ((cfg.ctr_tightening_exit, cfg.ctr_tightening_enter) if target.level <= 1
                else (cfg.ctr_pressured_exit, cfg.ctr_pressured_enter)),
        "hcp95": (cfg.hcp95_tightening_exit, cfg.hcp95_tightening_enter),
        "nfd_per_s": (cfg.nfd_pressured_exit_per_s, cfg.nfd_pressured_enter_per_s),
        "osd_ms": (cfg.osd_tightening_exit_ms, cfg.osd_tightening_enter_ms),
    }
    holders = {H: ["ctr"], T: ["ctr", "hcp95", "osd_ms"], P: ["ctr", "nfd_per_s"],
               SC: ["ctr", "nfd_per_s", "cdt_breach"]}[target]
    before = len(m.transitions)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    max_gap = data.draw(st.sampled_from([0.1, 1.0, 5.0]))
    for _ in range(data.draw(st.integers(1, 60))):
        t += rng.uniform(0.0, max_gap)
        held = rng.choice(holders)
        v: dict[str, float] = {}
        for name, (lo, hi) in band.items():
            inside = target is H or name == held or rng.random() < 0.5
            v[name] = _pick(rng, name, lo, hi) if inside else _pick(rng, name, 0, lo)
        breach = target is SC and (held == "cdt_breach" or rng.random() < 0.5)
        m.feed(RegimeInput(t=t, ctr=v["ctr"], hcp95=int(v["hcp95"]), nfd_per_s=v["nfd_per_s"],
                           osd_ms=v["osd_ms"], cdt_breach=breach))
    assert m.transitions[before:] == []
    assert m.regime is target


# (2) dwell always respected ----------------------------------------------------------


@FAST
@given(scenarios())
def test_no_de_escalation_before_the_dwell(scenario: tuple[RegimeConfig,
                                                           list[RegimeInput]]) -> None:
    cfg, inputs = scenario
    m, entered = RegimeMachine(cfg), 0.0
    for x in inputs:
        since = m.state.since
        tr = m.feed(x)
        if tr is None:
            continue
        assert since == entered
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


@st.composite
def calm_tail(draw: st.DrawFn, cfg: RegimeConfig, t0: float, gaps: Sequence[float],
              ) -> list[RegimeInput]:
    """Samples with every signal below its exit threshold, from t0 until well past any
    possible recovery bound (samples `gaps` apart, cycled)."""
    r = ranges(cfg)
    values = draw(st.lists(st.tuples(*(value_in(name, *r[name][0])
                                      for name in ("ctr", "hcp95", "nfd_per_s", "osd_ms"))),
                           min_size=1, max_size=10))
    until = t0 + cfg.nfd_quiet_s + 3 * MAX_DWELL + 3 * max(gaps) + 1.0
    out, t, i = [], t0, 0
    while t <= until:
        ctr, hcp, nfd, osd = values[i % len(values)]
        out.append(RegimeInput(t=t, ctr=float(ctr), hcp95=int(hcp), nfd_per_s=float(nfd),
                               osd_ms=float(osd)))
        t += gaps[i % len(gaps)]
        i += 1
    return out


def check_recovery(cfg: RegimeConfig, prefix: list[RegimeInput], tail: list[RegimeInput],
                   per_step: float, once: float) -> None:
    """HEALTHY by t0 + NFD quiet + the dwells on the way down + the slack, and stays."""
    m = RegimeMachine(cfg)
    for x in prefix:
        m.feed(x)
    start, t0 = m.regime, tail[0].t
    path = [r for r in Regime if 0 < r.level <= start.level]
    bound = t0 + (cfg.nfd_quiet_s if path else 0.0) + sum(cfg.dwell_s(r) for r in path)
    healthy_at = t0 if start is H else None
    for x in tail:
        tr = m.feed(x)
        if tr is not None:
            assert not tr.escalation
            assert healthy_at is None, "left HEALTHY again while calm"
            if tr.to_state is H:
                healthy_at = x.t
    assert healthy_at is not None
    # sample times are float sums: allow rounding, not a sample's worth of slack
    assert healthy_at <= bound + per_step * len(path) + once + 1e-9


@FAST
@given(st.data())
def test_returns_to_healthy_after_pressure_ends(data: st.DataObject) -> None:
    """Bound: NFD quiet + the dwells of the regimes on the way down + one sample gap per
    step, because each step happens on a sample and the next dwell counts from it."""
    cfg, prefix = data.draw(scenarios())
    gaps = data.draw(st.lists(st.floats(0.01, 2.0), min_size=1, max_size=10))
    t0 = (prefix[-1].t if prefix else 0.0) + data.draw(st.floats(0.0, 2.0))
    check_recovery(cfg, prefix, data.draw(calm_tail(cfg, t0, gaps)), per_step=max(gaps),
                   once=0.0)


@FAST
@given(st.data())
def test_returns_to_healthy_within_dwells_plus_one_sample_on_a_grid(
        data: st.DataObject) -> None:
    """With a fixed sample period that divides every dwell (each at least one period:
    one level per sample), the way down takes at most the sum of the dwells (NFD quiet
    included) plus one sample."""
    dt = 0.25  # exact in binary: times and dwells add up without rounding
    cfg = data.draw(configs(grid=dt))
    prefix = [RegimeInput(t=i * dt, ctr=x.ctr, hcp95=x.hcp95, nfd_per_s=x.nfd_per_s,
                          osd_ms=x.osd_ms, cdt_breach=x.cdt_breach)
              for i, x in enumerate(data.draw(samples(cfg)))]
    tail = data.draw(calm_tail(cfg, len(prefix) * dt, [dt]))
    check_recovery(cfg, prefix, tail, per_step=0.0, once=dt)


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


# the generators reach every transition (else the properties above prove little) -------


def test_generated_scenarios_cover_every_transition() -> None:
    seen: set[tuple[Regime, Regime]] = set()

    @settings(max_examples=200, deadline=None, database=None, derandomize=True)
    @given(scenarios())
    def collect(scenario: tuple[RegimeConfig, list[RegimeInput]]) -> None:
        cfg, inputs = scenario
        m = RegimeMachine(cfg)
        for x in inputs:
            m.feed(x)
        seen.update((tr.from_state, tr.to_state) for tr in m.transitions)

    collect()
    assert {(H, T), (H, P), (T, P), (P, T), (T, H), (P, SC), (SC, P)} <= seen
