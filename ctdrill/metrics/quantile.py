"""The one quantile definition ctdrill uses everywhere: nearest rank, no interpolation.

Why nearest rank: a tail quantile of latencies or costs should be a value that was
actually observed (an interpolated p95 between two acks never happened), and it is the
definition an SRE checks by hand: sort, take the ceil(q*n)-th value. The weighted form
is the same rule over cumulative weights (with unit weights it equals the plain form),
so the probe, the judge and the production analysis give the same p95 for the same data
(docs/METRICS.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The ceil(q*n)-th smallest value (1-based); None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def weighted_nearest_rank(y: NDArray[np.float64], w: NDArray[np.float64],
                          q: float) -> float | None:
    """Smallest y whose cumulative weight reaches q of the total (y need not be sorted).

    With unit weights this is `nearest_rank`; None when there is no positive weight.
    """
    keep = w > 0
    if not np.any(keep):
        return None
    order = np.argsort(y[keep], kind="stable")
    ys, cum = y[keep][order], np.cumsum(w[keep][order])
    i = int(np.searchsorted(cum, q * cum[-1], side="left"))
    return float(ys[min(i, len(ys) - 1)])


def weighted_nearest_ranks(y: NDArray[np.float64], w: NDArray[np.float64],
                           qs: Sequence[float]) -> list[float | None]:
    """`weighted_nearest_rank` at each of `qs`, from one sort: the same arithmetic, so
    the same values (a quantile curve of millions of orders sorts once, not per point)."""
    keep = w > 0
    if not np.any(keep):
        return [None] * len(qs)
    order = np.argsort(y[keep], kind="stable")
    return ranks_of_sorted(y[keep][order], np.cumsum(w[keep][order]), qs)


def ranks_of_sorted(ys: NDArray[np.float64], cum: NDArray[np.float64],
                    qs: Sequence[float]) -> list[float | None]:
    """The nearest-rank step itself, on values already sorted with their cumulative
    weights: the smallest value whose cumulative weight reaches q of the total."""
    return [float(ys[min(int(np.searchsorted(cum, q * cum[-1], side="left")), len(ys) - 1)])
            for q in qs]
