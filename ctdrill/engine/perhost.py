"""Expectations about a group, made one per host: on a pool, "the kernel dropped new
flows on gateways" must hold on every gateway, each judged and shown on its own."""

from __future__ import annotations

from collections.abc import Callable

from ctdrill.spec.models import (
    Expectation,
    MetricExpectation,
    RegimeExpectation,
    StepTrendExpectation,
)

PER_HOST = (MetricExpectation, RegimeExpectation, StepTrendExpectation)


def per_host(expectations: list[Expectation],
             select: Callable[[str], list[str]]) -> list[Expectation]:
    """Each metric, regime or trend expectation naming a group, once per host of it
    (named "NAME (host)"); everything else as it is. `select` resolves a host or group
    to host names, in inventory order."""
    out: list[Expectation] = []
    for e in expectations:
        host = getattr(e, "host", None)
        hosts = select(host) if isinstance(e, PER_HOST) and host else []
        if len(hosts) <= 1 and (not hosts or hosts[0] == host):
            out.append(e)
            continue
        for h in sorted(hosts):
            name = f"{e.name} ({h})" if e.name else None
            out.append(e.model_copy(update={"host": h, "name": name}))
    return out
