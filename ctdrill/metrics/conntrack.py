"""CTR, HCP95, NFD and the kernel's own rates, as pure functions of telemetry samples.

Model notes (also in docs/METRICS.md):

- CTR (conntrack table ratio) = count / max of the target's namespace. The kernel's
  table-full check compares each namespace's own count with the global max.
- HCP95 (hash chain p95): the kernel exports no chain lengths. Each entry is hashed
  twice (original and reply tuple) into `buckets` chains, so the mean chain length is
  lambda = 2 * count / buckets, and under a uniform hash a bucket's chain length is
  Poisson(lambda). HCP95 is the 95th percentile of that distribution: how many
  entries a new flow's lookup walks in a bad-but-common bucket. The kernel's
  `chainlength` (chain-too-long) counter is reported beside it as the check.
- NFD (new-flow drops): the `drop` counter's rate, and its fraction of new-flow
  attempts. This kernel leaves `insert`/`new` at 0, so attempts are inferred:
  attempts = max(delta count, 0) + delta early_drop + delta drop. Expirations inside
  the window hide some inserts, so the fraction is an upper bound on the true one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ctdrill.telemetry.protocol import Sample

HCP_QUANTILE = 0.95


def ctr(count: int, maximum: int) -> float:
    """Conntrack table ratio; 0 for an unknown max rather than a division error."""
    return count / maximum if maximum > 0 else 0.0


def poisson_quantile(lam: float, q: float) -> int:
    """Smallest k with P(X <= k) >= q for X ~ Poisson(lam), summed in log space."""
    if not 0 < q < 1:
        raise ValueError("q must be in (0, 1)")
    if lam <= 0:
        return 0
    cumulative = 0.0
    limit = int(lam + 12 * math.sqrt(lam) + 30)
    for k in range(limit + 1):
        cumulative += math.exp(-lam + k * math.log(lam) - math.lgamma(k + 1))
        if cumulative >= q:
            return k
    return limit


def hcp(count: int, buckets: int, q: float = HCP_QUANTILE) -> int:
    """Modelled hash-chain length quantile for `count` entries in `buckets` chains."""
    if buckets <= 0:
        return 0
    return poisson_quantile(2.0 * count / buckets, q)


def counter_delta(before: Mapping[str, int], after: Mapping[str, int], name: str) -> int:
    """Increase of a summed per-CPU counter; a reset (negative delta) counts as 0."""
    return max(0, after.get(name, 0) - before.get(name, 0))


@dataclass(frozen=True)
class WindowMetrics:
    """Metrics of one target over the window between two samples."""

    t: float
    window_s: float
    count: int
    max: int
    buckets: int
    ctr: float
    hcp95: int
    chain_too_long_per_s: float
    nfd_per_s: float
    nfd_fraction: float
    new_flows_per_s: float
    early_drop_per_s: float
    insert_failed_per_s: float
    drops: int
    table_full_events: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def window_metrics(before: Sample, after: Sample, events_in_window: int = 0) -> WindowMetrics:
    """Rates between two samples of the same target; `after` gives the levels."""
    dt = after.t - before.t
    if dt <= 0:
        raise ValueError("samples must be in time order")
    drops = counter_delta(before.stat, after.stat, "drop")
    early = counter_delta(before.stat, after.stat, "early_drop")
    failed = counter_delta(before.stat, after.stat, "insert_failed")
    chain = counter_delta(before.stat, after.stat, "chainlength")
    grown = max(0, after.count - before.count)
    attempts = grown + early + drops
    return WindowMetrics(
        t=after.t,
        window_s=dt,
        count=after.count,
        max=after.max,
        buckets=after.buckets,
        ctr=ctr(after.count, after.max),
        hcp95=hcp(after.count, after.buckets),
        chain_too_long_per_s=chain / dt,
        nfd_per_s=drops / dt,
        nfd_fraction=drops / attempts if attempts else 0.0,
        new_flows_per_s=(grown + early) / dt,
        early_drop_per_s=early / dt,
        insert_failed_per_s=failed / dt,
        drops=drops,
        table_full_events=events_in_window,
    )
