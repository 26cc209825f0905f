"""Canary validation: did the change on the canary pool (a notrack bypass, a capacity
step) move the CDT more than the control pool moved over the same dates?

Difference in differences, per metric m: (m[canary, after] - m[canary, before]) -
(m[control, after] - m[control, before]). Market regimes hit both pools at once and
cancel; only what the change did to the canary remains. A CI that excludes zero says the
tail uplift is infra-causal; one that includes zero says it cannot be told apart from
regime noise.
"""

from __future__ import annotations

import fnmatch

import numpy as np
from numpy.typing import NDArray

from ctdrill.analysis.bootstrap import (
    boot_means,
    percentile_ci,
    point_quantiles,
    ranked,
    replicate_quantiles,
)
from ctdrill.analysis.data import F64, I64
from ctdrill.analysis.matching import Pairs
from ctdrill.analysis.results import CanaryResult, Estimate
from ctdrill.errors import InvalidInput

CELLS = (("canary", True), ("control", False))
PERIODS = (("before", False), ("after", True))


def select_hosts(patterns: str, hosts: tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated names or globs (gw-a*,gw-b3) -> the log's matching hosts."""
    chosen: list[str] = []
    for pat in (p.strip() for p in patterns.split(",")):
        if not pat:
            continue
        hit = [h for h in hosts if fnmatch.fnmatchcase(h, pat)]
        if not hit:
            raise InvalidInput(f"--canary {pat!r} matches no host in the execution log",
                               f"log hosts: {', '.join(hosts[:8])}"
                               + (" ..." if len(hosts) > 8 else ""))
        chosen.extend(h for h in hit if h not in chosen)
    if not chosen:
        raise InvalidInput("--canary is empty", "name the canary hosts, comma-separated")
    if len(chosen) == len(hosts):
        raise InvalidInput("--canary selects every host: no control pool is left",
                           "name only the hosts that got the change")
    return tuple(chosen)


def _did(cells: dict[str, F64 | float | None]) -> F64 | float | None:
    ca, cb = cells["canary/after"], cells["canary/before"]
    ka, kb = cells["control/after"], cells["control/before"]
    if ca is None or cb is None or ka is None or kb is None:
        return None
    return (ca - cb) - (ka - kb)


def _wmean(y: F64, w: F64) -> float | None:
    return float(np.average(y, weights=w)) if y.size and w.sum() > 0 else None


def diff_in_diff(y: F64, treated: NDArray[np.bool_], w: F64, pool: NDArray[np.bool_],
                 after: NDArray[np.bool_], cid: I64, cf: dict[float, F64], pairs: Pairs,
                 y_all: F64, pool_all: NDArray[np.bool_], after_all: NDArray[np.bool_],
                 cid_all: I64, rep_w: F64) -> tuple[dict[str, dict[str, float | None]],
                                                    dict[str, Estimate]]:
    """Cell values and DiD estimates for cdt_mean, cdt_p95, cdt_p99 (matched high minus
    their bias-corrected stand-ins, per cell) and is_p95 (all orders of the cell: the
    view of a capacity step, which changes how often orders meet pressure at all)."""
    metrics = ("cdt_mean", "cdt_p95", "cdt_p99", "is_p95")
    points: dict[str, dict[str, float | None]] = {m: {} for m in metrics}
    boots: dict[str, dict[str, F64 | float | None]] = {m: {} for m in metrics}
    for pname, pflag in CELLS:
        for tname, tflag in PERIODS:
            key = f"{pname}/{tname}"
            sel = (pool == pflag) & (after == tflag)
            hi = sel & treated & (w > 0)
            psel = sel[pairs.anchor]
            pc, ps = pairs.control[psel], pairs.share[psel]
            hi_mean, lo_mean = _wmean(y[hi], w[hi]), _wmean(y[pc], ps)
            points["cdt_mean"][key] = None if hi_mean is None or lo_mean is None \
                else hi_mean - lo_mean
            boots["cdt_mean"][key] = (boot_means(y[hi], w[hi], cid[hi], rep_w)
                                      - boot_means(y[pc], ps, cid[pc], rep_w))
            # each group is sorted once for its point quantiles and its replicates'
            r_hi = ranked(y[hi], w[hi], cid[hi])
            bq_hi = replicate_quantiles(r_hi, rep_w, (0.95, 0.99))
            q_his = point_quantiles(r_hi, (0.95, 0.99))
            for i, (m, q) in enumerate((("cdt_p95", 0.95), ("cdt_p99", 0.99))):
                r_lo = ranked(cf[q][psel], ps, cid[pc])
                q_hi, q_lo = q_his[i], point_quantiles(r_lo, (q,))[0]
                points[m][key] = None if q_hi is None or q_lo is None else q_hi - q_lo
                boots[m][key] = bq_hi[:, i] - replicate_quantiles(r_lo, rep_w, (q,))[:, 0]
            sel_all = (pool_all == pflag) & (after_all == tflag)
            r_all = ranked(y_all[sel_all], np.ones(int(sel_all.sum())), cid_all[sel_all])
            points["is_p95"][key] = point_quantiles(r_all, (0.95,))[0]
            boots["is_p95"][key] = replicate_quantiles(r_all, rep_w, (0.95,))[:, 0]
    did: dict[str, Estimate] = {}
    for m in metrics:
        point = _did(dict(points[m]))
        reps = _did(boots[m])
        ci = percentile_ci(np.asarray(reps)) if point is not None and reps is not None \
            else None
        did[m] = Estimate(None if point is None else float(point),
                          ci[0] if ci else None, ci[1] if ci else None,
                          "difference in differences, cluster bootstrap percentile CI")
    cells = {f"{p}/{t}": {m: points[m][f"{p}/{t}"] for m in metrics}
             for p, _ in CELLS for t, _ in PERIODS}
    return cells, did


def verdict(did: dict[str, Estimate]) -> tuple[str, str, bool]:
    """Which metric to judge on (the CDT p95 when every cell has it) and the sentence."""
    metric = "cdt_p95" if did["cdt_p95"].value is not None else "is_p95"
    e = did[metric]
    name = "CDT p95" if metric == "cdt_p95" else "IS p95 (all orders)"
    if e.value is None:
        return metric, "not estimable: a pool or period has no orders", False
    span = (f"[{e.lo:+.2f}, {e.hi:+.2f}]" if e.lo is not None and e.hi is not None
            else "(no CI: too few replicates)")
    if e.excludes_zero:
        way = "fell" if e.value < 0 else "rose"
        return metric, (f"infra-causal: after the change the canary pool's {name} {way} by "
                        f"{abs(e.value):.2f} bps relative to the control pool, CI {span} "
                        "excludes zero"), True
    return metric, (f"regime noise: the canary pool's {name} moved {e.value:+.2f} bps "
                    f"relative to the control pool, CI {span} includes zero"), False


def build(canary_hosts: tuple[str, ...], control_hosts: tuple[str, ...], change_at: float,
          cells: dict[str, dict[str, float | None]],
          did: dict[str, Estimate]) -> CanaryResult:
    metric, text, causal = verdict(did)
    return CanaryResult(canary_hosts, control_hosts, change_at, cells, did, metric, text,
                        causal)
