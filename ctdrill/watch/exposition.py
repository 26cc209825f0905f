"""Prometheus text exposition of the watch state (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.regime.states import Regime


@dataclass(frozen=True)
class TargetView:
    """What the watch knows about one target right now."""

    host: str
    up: bool
    regime: Regime
    metrics: WindowMetrics | None
    transitions: int
    reconnects: int


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


GAUGES = (
    ("ctdrill_ctr", "Conntrack table ratio, count / max.", "ctr"),
    ("ctdrill_hcp95", "Modelled p95 hash-chain length.", "hcp95"),
    ("ctdrill_nfd_per_second", "Kernel new-flow drops per second.", "nfd_per_s"),
    ("ctdrill_nfd_fraction", "New-flow drops as a fraction of new-flow attempts.",
     "nfd_fraction"),
    ("ctdrill_conntrack_count", "nf_conntrack_count of the target's namespace.", "count"),
    ("ctdrill_conntrack_max", "nf_conntrack_max (kernel-wide).", "max"),
    ("ctdrill_early_drop_per_second", "Kernel early drops per second.", "early_drop_per_s"),
)


def render(views: Mapping[str, TargetView]) -> str:
    """The whole /metrics page; one series per host, the regime as a labelled gauge."""
    out: list[str] = []

    def family(name: str, help_text: str, kind: str = "gauge") -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")

    family("ctdrill_target_up", "1 while telemetry from the target flows.")
    for v in views.values():
        out.append(f'ctdrill_target_up{{host="{_label(v.host)}"}} {int(v.up)}')
    for name, help_text, attr in GAUGES:
        family(name, help_text)
        for v in views.values():
            if v.metrics is not None:
                value = float(getattr(v.metrics, attr))
                out.append(f'{name}{{host="{_label(v.host)}"}} {value:.6g}')
    family("ctdrill_regime", "1 for the target's current conntrack regime, 0 otherwise.")
    for v in views.values():
        for r in Regime:
            out.append(f'ctdrill_regime{{host="{_label(v.host)}",regime="{r.value}"}} '
                       f"{int(v.regime is r)}")
    family("ctdrill_regime_transitions_total", "Regime transitions since the watch started.",
           "counter")
    for v in views.values():
        out.append(f'ctdrill_regime_transitions_total{{host="{_label(v.host)}"}} '
                   f"{v.transitions}")
    family("ctdrill_telemetry_reconnects_total", "Times the telemetry stream was reopened.",
           "counter")
    for v in views.values():
        out.append(f'ctdrill_telemetry_reconnects_total{{host="{_label(v.host)}"}} '
                   f"{v.reconnects}")
    return "\n".join(out) + "\n"
