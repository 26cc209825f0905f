"""The regime state machine: a pure `step` over samples, and a small wrapper around it.

Rules (docs/REGIME.md has the full account and the defaults):

- Escalation is immediate and may skip levels: safety first, a router must not wait
  out a dwell while flows are being dropped.
- De-escalation goes one level at a time, only after the current regime's minimum
  dwell AND once every signal holding it up is below its EXIT threshold. Between
  exit and enter (the hysteresis band) nothing changes, so jitter cannot flap it.
- Every transition is returned as a `Transition` naming the signal, the threshold and
  the value that caused it, with the whole sample, so a journal can store it.

Time comes in with the samples (`RegimeInput.t`); nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from ctdrill.regime.config import RegimeConfig
from ctdrill.regime.states import Regime, advice

if TYPE_CHECKING:
    from ctdrill.metrics.conntrack import WindowMetrics

H, T, P, SC = Regime.HEALTHY, Regime.TIGHTENING, Regime.PRESSURED, Regime.SAFE_CONTAIN


@dataclass(frozen=True)
class RegimeInput:
    """One sample of the signals the machine reads.

    t: seconds, non-decreasing (any origin: monotonic clock or seconds into the drill).
    ctr: conntrack table ratio, count / max (0..1; a lowered max can push it above 1).
    hcp95: modelled p95 hash-chain length.
    nfd_per_s: kernel new-flow drops per second.
    osd_ms: order state skew, how stale the client's view of orders is (0: no probe).
    cdt_breach: the slippage-tail proxy (CDT) is over its threshold.
    """

    t: float
    ctr: float
    hcp95: int = 0
    nfd_per_s: float = 0.0
    osd_ms: float = 0.0
    cdt_breach: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.t):
            raise ValueError(f"t must be finite, not {self.t!r}")
        for name in ("ctr", "nfd_per_s", "osd_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
        if isinstance(self.hcp95, bool) or not isinstance(self.hcp95, int) or self.hcp95 < 0:
            raise ValueError(f"hcp95 must be an integer >= 0, not {self.hcp95!r}")

    @classmethod
    def from_window(cls, w: WindowMetrics, osd_ms: float = 0.0,
                    cdt_breach: bool = False) -> RegimeInput:
        """The sample for one metrics window; OSD and CDT come from the order probe."""
        return cls(t=w.t, ctr=w.ctr, hcp95=w.hcp95, nfd_per_s=w.nfd_per_s, osd_ms=osd_ms,
                   cdt_breach=cdt_breach)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RegimeState:
    """Everything `step` needs to remember between samples (immutable).

    regime/since: the current regime and the sample time it was entered (dwell origin).
    last_t: the previous sample's time (None before the first), to refuse time going back.
    episodes: times of the pressure episodes (entries into PRESSURED from below) still
      inside the episode window.
    ctr_high_since: start of the current run of samples with CTR >= the pressured
      enter threshold (the sustain timer), None when CTR is below it.
    nfd_quiet_since: start of the current run of samples with NFD below its exit
      threshold (the quiet timer), None while drops continue.
    held_by: the signals that held the current regime up at the previous sample; when
      the regime de-escalates, these are the ones that crossed their exit threshold.
    """

    regime: Regime = Regime.HEALTHY
    since: float = 0.0
    last_t: float | None = None
    episodes: tuple[float, ...] = ()
    ctr_high_since: float | None = None
    nfd_quiet_since: float | None = None
    held_by: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "regime": self.regime.value, "episodes": list(self.episodes),
                "held_by": list(self.held_by)}


@dataclass(frozen=True)
class Transition:
    """One regime change, with its cause, as a journal records it."""

    t: float
    from_state: Regime
    to_state: Regime
    signal: str
    """ctr, hcp95, osd_ms, nfd_per_s, nfd_quiet_s, cdt_breach, pressure_episodes, dwell_s."""
    threshold: float
    value: float
    sample: RegimeInput
    detail: str = ""

    @property
    def escalation(self) -> bool:
        return self.to_state.level > self.from_state.level

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "from_state": self.from_state.value,
                "to_state": self.to_state.value, "signal": self.signal,
                "threshold": self.threshold, "value": self.value, "detail": self.detail,
                "sample": self.sample.to_json(), "advice": advice(self.to_state).to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transition:
        """Read back what `to_json` wrote (e.g. from a journal); `advice` is derived."""
        return cls(t=float(data["t"]), from_state=Regime(data["from_state"]),
                   to_state=Regime(data["to_state"]), signal=str(data["signal"]),
                   threshold=float(data["threshold"]), value=float(data["value"]),
                   sample=RegimeInput(**data["sample"]), detail=str(data.get("detail", "")))


@dataclass(frozen=True)
class _Check:
    """A condition on one signal: which threshold, what value, and whether it holds."""

    signal: str
    threshold: float
    value: float
    on: bool
    detail: str


def _tightening_enter(x: RegimeInput, cfg: RegimeConfig) -> _Check | None:
    """First tightening signal at or over its enter threshold (ctr, hcp95, osd_ms)."""
    for signal, threshold, value in (("ctr", cfg.ctr_tightening_enter, x.ctr),
                                     ("hcp95", cfg.hcp95_tightening_enter, x.hcp95),
                                     ("osd_ms", cfg.osd_tightening_enter_ms, x.osd_ms)):
        if value >= threshold:
            return _Check(signal, threshold, value, True, f"{signal} {value:g} >= enter "
                                                          f"{threshold:g}")
    return None


def _pressure_enter(x: RegimeInput, ctr_high_since: float | None,
                    cfg: RegimeConfig) -> _Check | None:
    """Observed drops first (hard evidence), then CTR high for `ctr_sustain_s`."""
    if x.nfd_per_s >= cfg.nfd_pressured_enter_per_s:
        return _Check("nfd_per_s", cfg.nfd_pressured_enter_per_s, x.nfd_per_s, True,
                      f"new-flow drops {x.nfd_per_s:g}/s >= enter "
                      f"{cfg.nfd_pressured_enter_per_s:g}/s")
    if ctr_high_since is not None and x.t - ctr_high_since >= cfg.ctr_sustain_s:
        return _Check("ctr", cfg.ctr_pressured_enter, x.ctr, True,
                      f"ctr {x.ctr:g} >= enter {cfg.ctr_pressured_enter:g} for "
                      f"{x.t - ctr_high_since:g} s (sustain {cfg.ctr_sustain_s:g} s)")
    return None


def _holders(regime: Regime, x: RegimeInput, nfd_quiet_since: float | None,
             cfg: RegimeConfig) -> list[_Check]:
    """The release conditions of `regime`; `on` means the signal still holds it up."""
    if regime is H:
        return []
    if regime is T:
        return [_Check(s, thr, v, v >= thr, f"{s} {v:g} < exit {thr:g}")
                for s, thr, v in (("ctr", cfg.ctr_tightening_exit, x.ctr),
                                  ("hcp95", cfg.hcp95_tightening_exit, x.hcp95),
                                  ("osd_ms", cfg.osd_tightening_exit_ms, x.osd_ms))]
    quiet = x.t - nfd_quiet_since if nfd_quiet_since is not None else 0.0
    pressure = [
        _Check("ctr", cfg.ctr_pressured_exit, x.ctr, x.ctr >= cfg.ctr_pressured_exit,
               f"ctr {x.ctr:g} < exit {cfg.ctr_pressured_exit:g}"),
        _Check("nfd_quiet_s", cfg.nfd_quiet_s, quiet,
               nfd_quiet_since is None or quiet < cfg.nfd_quiet_s,
               f"new-flow drops below {cfg.nfd_pressured_exit_per_s:g}/s for {quiet:g} s "
               f"(quiet {cfg.nfd_quiet_s:g} s)"),
    ]
    if regime is P:
        return pressure
    breach = float(x.cdt_breach)
    return [_Check("cdt_breach", 1.0, breach, x.cdt_breach, "no slippage-tail breach"),
            *pressure]


def step(state: RegimeState, x: RegimeInput,
         cfg: RegimeConfig) -> tuple[RegimeState, Transition | None]:
    """Advance the machine by one sample; returns the new state and the transition, if any.

    Raises ValueError if `x.t` is earlier than the previous sample's time.
    """
    if state.last_t is not None and x.t < state.last_t:
        raise ValueError(f"sample time went back: {x.t:g} after {state.last_t:g}")
    cur = state.regime
    ctr_high_since = ((x.t if state.ctr_high_since is None else state.ctr_high_since)
                      if x.ctr >= cfg.ctr_pressured_enter else None)
    nfd_quiet_since = ((x.t if state.nfd_quiet_since is None else state.nfd_quiet_since)
                       if x.nfd_per_s < cfg.nfd_pressured_exit_per_s else None)
    episodes = tuple(e for e in state.episodes if x.t - e <= cfg.episode_window_s)

    press = _pressure_enter(x, ctr_high_since, cfg)
    if press is not None and cur.level < P.level:
        episodes += (x.t,)
    pressured_now = press is not None or (
        cur is P and any(c.on for c in _holders(P, x, nfd_quiet_since, cfg)))

    cause: _Check | None = None
    target = cur
    if (cur is not SC and x.cdt_breach and pressured_now
            and len(episodes) >= cfg.episodes):
        target = SC
        cause = _Check("pressure_episodes", cfg.episodes, len(episodes), True,
                       f"{len(episodes)} pressure episodes within {cfg.episode_window_s:g} s "
                       f"(>= {cfg.episodes}) with a slippage-tail breach (cdt_breach)")
    elif press is not None and cur.level < P.level:
        target, cause = P, press
    elif cur is H:
        cause = _tightening_enter(x, cfg)
        target = T if cause is not None else H

    if cause is None:
        holders = _holders(cur, x, nfd_quiet_since, cfg)
        elapsed = x.t - state.since
        if cur is not H and not any(c.on for c in holders) and elapsed >= cfg.dwell_s(cur):
            target = cur.lower()
            crossed = [c for c in holders if c.signal in state.held_by]
            cause = crossed[0] if crossed else _Check(
                "dwell_s", cfg.dwell_s(cur), elapsed, True,
                f"{elapsed:g} s in {cur.value} >= dwell {cfg.dwell_s(cur):g} s")

    since = state.since if target is cur else x.t
    held_by = tuple(c.signal for c in _holders(target, x, nfd_quiet_since, cfg) if c.on)
    new = replace(state, regime=target, since=since, last_t=x.t, episodes=episodes,
                  ctr_high_since=ctr_high_since, nfd_quiet_since=nfd_quiet_since,
                  held_by=held_by)
    if cause is None or target is cur:
        return new, None
    return new, Transition(t=x.t, from_state=cur, to_state=target, signal=cause.signal,
                           threshold=float(cause.threshold), value=float(cause.value),
                           sample=x, detail=cause.detail)


class RegimeMachine:
    """`step` with its state and the transitions so far kept for you."""

    def __init__(self, cfg: RegimeConfig | None = None,
                 state: RegimeState | None = None) -> None:
        self.cfg = cfg if cfg is not None else RegimeConfig()
        self.state = state if state is not None else RegimeState()
        self._transitions: list[Transition] = []

    @property
    def regime(self) -> Regime:
        return self.state.regime

    @property
    def transitions(self) -> list[Transition]:
        """A copy: the machine's own list cannot be edited through it."""
        return list(self._transitions)

    def feed(self, x: RegimeInput) -> Transition | None:
        self.state, transition = step(self.state, x, self.cfg)
        if transition is not None:
            self._transitions.append(transition)
        return transition


def run(inputs: Iterable[RegimeInput], cfg: RegimeConfig | None = None) -> list[Transition]:
    """Feed every sample from HEALTHY; the transitions, in order."""
    machine = RegimeMachine(cfg)
    for x in inputs:
        machine.feed(x)
    return machine.transitions
