"""The four conntrack regimes and the control advice each one carries.

The advice is data, not prose, so an execution router can act on a regime change
without parsing text: each level keeps the controls of the level below and adds its
own, because pressure that escalated past a level still has that level's causes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal


class Regime(StrEnum):
    """Conntrack regimes, least to most severe; compare them by `level`, never by `<`
    (a StrEnum's `<` compares the names as strings)."""

    HEALTHY = "CT_HEALTHY"
    TIGHTENING = "CT_TIGHTENING"
    PRESSURED = "CT_PRESSURED"
    SAFE_CONTAIN = "CT_SAFE_CONTAIN"

    @property
    def level(self) -> int:
        """0 (healthy) .. 3 (safe contain): the order escalation climbs."""
        return _ORDER.index(self)

    def lower(self) -> Regime:
        """The next less severe regime (HEALTHY stays HEALTHY): de-escalation's one step."""
        return _ORDER[max(0, self.level - 1)]


_ORDER: tuple[Regime, ...] = (Regime.HEALTHY, Regime.TIGHTENING, Regime.PRESSURED,
                              Regime.SAFE_CONTAIN)

RetryPolicy = Literal["normal", "restrained", "backoff"]
PathClass = Literal["default", "clean"]


@dataclass(frozen=True)
class ControlAdvice:
    """What the playbook tells an execution router to do in one regime.

    `path_class="clean"` means the conntrack-bypassed (nftables notrack) path class,
    the one a full table cannot drop flows on.
    """

    regime: Regime
    summary: str
    pacing: bool
    """Pace order submission instead of sending in bursts."""
    retry: RetryPolicy
    """normal; restrained (fewer, later retries); backoff (exponential, jittered)."""
    burst_damping: bool
    """Smooth bursts of new flows (e.g. after a reconnect storm)."""
    preopen_flows: bool
    """Open and keep flows ahead of need rather than one new flow per order."""
    path_class: PathClass
    """Where order flow goes: the default path or the clean (notrack) path class."""
    freeze_nonessential_new_flows: bool
    """Refuse new flows that are not order flow (reports, refreshes, ...)."""
    actions: tuple[str, ...]
    """The same controls as short imperative sentences, for people and logs."""

    def to_json(self) -> dict[str, Any]:
        return {"regime": self.regime.value, "summary": self.summary, "pacing": self.pacing,
                "retry": self.retry, "burst_damping": self.burst_damping,
                "preopen_flows": self.preopen_flows, "path_class": self.path_class,
                "freeze_nonessential_new_flows": self.freeze_nonessential_new_flows,
                "actions": list(self.actions)}


ADVICE: Mapping[Regime, ControlAdvice] = MappingProxyType({
    Regime.HEALTHY: ControlAdvice(
        regime=Regime.HEALTHY,
        summary="normal operation",
        pacing=False, retry="normal", burst_damping=False, preopen_flows=False,
        path_class="default", freeze_nonessential_new_flows=False,
        actions=("run normally",),
    ),
    Regime.TIGHTENING: ControlAdvice(
        regime=Regime.TIGHTENING,
        summary="table or chains filling, order state starting to skew: pace and "
                "restrain retries",
        pacing=True, retry="restrained", burst_damping=False, preopen_flows=False,
        path_class="default", freeze_nonessential_new_flows=False,
        actions=("pace order submission", "restrain retries (fewer, later)"),
    ),
    Regime.PRESSURED: ControlAdvice(
        regime=Regime.PRESSURED,
        summary="table full or new flows dropped: damp bursts, back off retries, "
                "pre-open flows",
        pacing=True, retry="backoff", burst_damping=True, preopen_flows=True,
        path_class="default", freeze_nonessential_new_flows=False,
        actions=("pace order submission", "back off retries (exponential, jittered)",
                 "damp bursts of new flows", "pre-open and reuse flows instead of "
                 "opening one per order"),
    ),
    Regime.SAFE_CONTAIN: ControlAdvice(
        regime=Regime.SAFE_CONTAIN,
        summary="repeated pressure with a slippage-tail breach: route order flow to the "
                "clean path class and freeze non-essential new flows",
        pacing=True, retry="backoff", burst_damping=True, preopen_flows=True,
        path_class="clean", freeze_nonessential_new_flows=True,
        actions=("route order flow to the clean path class (conntrack-bypassed, notrack)",
                 "freeze non-essential new flows", "pace order submission",
                 "back off retries (exponential, jittered)", "damp bursts of new flows",
                 "pre-open and reuse flows instead of opening one per order"),
    ),
})


def advice(regime: Regime) -> ControlAdvice:
    """The control advice for `regime`."""
    return ADVICE[regime]
