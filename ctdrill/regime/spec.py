"""`regime:` in a drill spec: the machine's thresholds and dwells, with their defaults.

Defaults come from `RegimeConfig`, so the spec and the machine cannot disagree.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from ctdrill.regime.config import RegimeConfig
from ctdrill.spec.strict import Rule, Strict

_D = RegimeConfig()
CONSISTENT = Rule("regime-thresholds-consistent",
                  "each exit threshold is below its enter threshold, and the thresholds and "
                  "dwells are ordered as docs/REGIME.md says")


class RegimeSpec(Strict):
    """Regime state machine settings: enter/exit thresholds per signal (hysteresis),
    sustain and quiet timers, pressure episodes, and the minimum dwell per regime.
    A signal enters at >= enter and stops holding its regime at < exit."""

    rules: ClassVar[tuple[Rule, ...]] = (CONSISTENT,)

    ctr_tightening_enter: float = Field(
        _D.ctr_tightening_enter, gt=0, le=1,
        description="CTR (count/max) at or above which CT_TIGHTENING is entered.")
    ctr_tightening_exit: float = Field(
        _D.ctr_tightening_exit, gt=0, le=1,
        description="CTR below which CTR stops holding CT_TIGHTENING; must be below "
                    "ctr_tightening_enter.")
    ctr_pressured_enter: float = Field(
        _D.ctr_pressured_enter, gt=0, le=1,
        description="CTR that enters CT_PRESSURED once held for ctr_sustain_s.")
    ctr_pressured_exit: float = Field(
        _D.ctr_pressured_exit, gt=0, le=1,
        description="CTR below which CTR stops holding CT_PRESSURED; must be below "
                    "ctr_pressured_enter.")
    ctr_sustain_s: float = Field(
        _D.ctr_sustain_s, ge=0,
        description="Seconds CTR must stay at or above ctr_pressured_enter before it "
                    "enters CT_PRESSURED (a single high sample does not).")
    hcp95_tightening_enter: int = Field(
        _D.hcp95_tightening_enter, ge=2,
        description="Modelled p95 hash-chain length at or above which CT_TIGHTENING is "
                    "entered (default 6: longer than a full table with max = buckets "
                    "ever gives).")
    hcp95_tightening_exit: int = Field(
        _D.hcp95_tightening_exit, ge=1,
        description="HCP95 below which it stops holding CT_TIGHTENING; must be below "
                    "hcp95_tightening_enter.")
    osd_tightening_enter_ms: float = Field(
        _D.osd_tightening_enter_ms, gt=0,
        description="Order state skew (ms the client's view of orders is stale) at or "
                    "above which CT_TIGHTENING is entered: the early state-skew signal.")
    osd_tightening_exit_ms: float = Field(
        _D.osd_tightening_exit_ms, gt=0,
        description="Order state skew (ms) below which it stops holding CT_TIGHTENING; "
                    "must be below osd_tightening_enter_ms.")
    nfd_pressured_enter_per_s: float = Field(
        _D.nfd_pressured_enter_per_s, gt=0,
        description="Kernel new-flow drops per second at or above which CT_PRESSURED is "
                    "entered at once.")
    nfd_pressured_exit_per_s: float = Field(
        _D.nfd_pressured_exit_per_s, gt=0,
        description="New-flow drops per second below which the quiet timer runs; must be "
                    "below nfd_pressured_enter_per_s.")
    nfd_quiet_s: float = Field(
        _D.nfd_quiet_s, ge=0,
        description="Seconds drops must stay below nfd_pressured_exit_per_s before they "
                    "stop holding CT_PRESSURED.")
    episodes: int = Field(
        _D.episodes, ge=1,
        description="Pressure episodes (entries into CT_PRESSURED from below) within "
                    "episode_window_s that, with a slippage-tail breach, enter "
                    "CT_SAFE_CONTAIN.")
    episode_window_s: float = Field(
        _D.episode_window_s, gt=0,
        description="Seconds over which pressure episodes are counted.")
    dwell_tightening_s: float = Field(
        _D.dwell_tightening_s, ge=0,
        description="Minimum seconds in CT_TIGHTENING before it may step down.")
    dwell_pressured_s: float = Field(
        _D.dwell_pressured_s, ge=0,
        description="Minimum seconds in CT_PRESSURED before it may step down.")
    dwell_safe_contain_s: float = Field(
        _D.dwell_safe_contain_s, ge=0,
        description="Minimum seconds in CT_SAFE_CONTAIN before it may step down; longer, "
                    "because it moves order flow to another path class.")

    @model_validator(mode="after")
    def consistent(self) -> RegimeSpec:
        """Cross-field rules (exit < enter, tightening before pressure) are RegimeConfig's,
        checked by building one: a spec that validates always yields a usable config."""
        try:
            self.to_config()
        except ValueError as exc:
            raise CONSISTENT.broken(str(exc)) from None
        return self

    def to_config(self) -> RegimeConfig:
        """The machine's settings (raises ValueError naming the fields if inconsistent)."""
        return RegimeConfig(**self.model_dump())
