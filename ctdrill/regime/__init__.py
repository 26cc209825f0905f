"""The conntrack regime state machine (pure): HEALTHY, TIGHTENING, PRESSURED, SAFE_CONTAIN.

See docs/REGIME.md for the rules, the defaults and the control advice per regime.
"""

from ctdrill.regime.config import RegimeConfig
from ctdrill.regime.machine import (
    RegimeInput,
    RegimeMachine,
    RegimeState,
    Transition,
    run,
    step,
)
from ctdrill.regime.spec import RegimeSpec
from ctdrill.regime.states import ADVICE, ControlAdvice, Regime, advice

__all__ = ["ADVICE", "ControlAdvice", "Regime", "RegimeConfig", "RegimeInput",
           "RegimeMachine", "RegimeSpec", "RegimeState", "Transition", "advice", "run",
           "step"]
