"""Guards during the run: ceilings that abort a drill, as pure functions of window metrics.

Kept apart from the judge (after the run) so the observation loop can check ceilings
without importing the judge, which itself reads the observation's result.
"""

from __future__ import annotations

from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.spec.models import Ceiling


def ceiling_breach(ceiling: Ceiling, hosts: set[str], host: str,
                   m: WindowMetrics) -> str | None:
    """A reason to abort when `host` is protected by the ceiling and is above it."""
    if host not in hosts:
        return None
    value = float(getattr(m, ceiling.metric))
    if value > ceiling.above:
        return f"guard: {ceiling.metric} on {host} is {value:.4g} > {ceiling.above:g}"
    return None
