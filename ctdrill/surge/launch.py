"""Which surge runs a plan: between lab namespaces here, or split across two hosts."""

from __future__ import annotations

from ctdrill.surge.plan import SurgePlan
from ctdrill.surge.runner import Surge, SurgeRun


def open_surge(plan: SurgePlan) -> Surge:
    """SurgeRun for lab namespaces of this machine; SplitSurge when an end is remote."""
    if plan.remote is not None:
        from ctdrill.surge.split import SplitSurge

        return SplitSurge(plan)
    return SurgeRun(plan)
