"""One quantile definition (nearest rank, ctdrill/metrics/quantile.py) everywhere.

The judge, the probe and the production analysis used to compute p95 three ways
(sorted(v)[int(0.95 n)], nearest rank, numpy's linear interpolation); here the same data
goes through each former call site and must come out as the same observed value.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ctdrill.analysis.bootstrap import percentile_ci, ranked, replicate_quantiles
from ctdrill.analysis.matching import quantile_bins
from ctdrill.engine.judge import statistic
from ctdrill.metrics.quantile import nearest_rank, weighted_nearest_rank
from ctdrill.probe.metrics import Message, window
from ctdrill.probe.spec import DriftModel

DRIFT = DriftModel(mu_bps_per_s=2.0, sigma_bps_per_sqrt_s=10.0, retry_penalty_bps=0.5,
                   timeout_penalty_bps=25.0)
FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_nearest_rank_is_the_ceil_q_n_th_smallest() -> None:
    assert nearest_rank([], 0.5) is None
    assert nearest_rank([3.0], 0.99) == 3.0
    values = [float(i) for i in range(1, 101)]
    assert nearest_rank(values, 0.95) == 95.0
    assert nearest_rank(values, 0.5) == 50.0
    assert nearest_rank(values, 0.0) == 1.0 and nearest_rank(values, 1.0) == 100.0
    # 20 values: the 19th, where sorted(v)[int(0.95 n)] took the 20th (the maximum)
    twenty = [float(i) for i in range(20)]
    assert nearest_rank(twenty, 0.95) == 18.0
    # never an interpolation between two observations (numpy's default gives 2.5)
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0


@given(st.lists(FINITE, min_size=1, max_size=60),
       st.floats(min_value=0.0, max_value=1.0))
def test_weighted_form_with_unit_weights_is_the_plain_form(values: list[float],
                                                           q: float) -> None:
    y = np.asarray(values, dtype=np.float64)
    assert weighted_nearest_rank(y, np.ones_like(y), q) == nearest_rank(values, q)


@given(st.lists(st.tuples(FINITE, st.integers(min_value=0, max_value=4)), min_size=1,
                max_size=40),
       st.sampled_from([0.05, 0.25, 0.5, 0.95, 0.99]))
def test_integer_weights_count_as_repeated_observations(
        pairs: list[tuple[float, int]], q: float) -> None:
    y = np.asarray([v for v, _ in pairs], dtype=np.float64)
    w = np.asarray([float(k) for _, k in pairs], dtype=np.float64)
    repeated = [v for v, k in pairs for _ in range(k)]
    assert weighted_nearest_rank(y, w, q) == nearest_rank(repeated, q)


def former_call_sites_p95(values: list[float]) -> dict[str, float | None]:
    """p95 of the same data through the judge, the probe and the analysis."""
    msgs = [Message(id=f"m{i}", verb="NEW", proto="tcp", sent=i * 1e-3,
                    acked=i * 1e-3 + v / 1000, filled=None, attempts=1, accepted=None)
            for i, v in enumerate(values)]
    probe = window(msgs, 0.0, 10.0, DRIFT, 1.0, 0.01).dwell_ms["p95"]
    y = np.asarray([m.dwell * 1000 for m in msgs if m.dwell is not None], dtype=np.float64)
    ones = np.ones_like(y)
    boot = replicate_quantiles(ranked(y, ones, np.zeros(y.size, dtype=np.int64)),
                               np.ones((1, 1)), (0.95,))
    reps = np.resize(y, max(20, y.size))  # percentile_ci needs 20 replicates
    ci = percentile_ci(reps, level=0.90)  # its upper bound is the 0.95 quantile
    return {
        "judge": statistic(list(y), "p95"),
        "probe": probe,
        "analysis": weighted_nearest_rank(y, ones, 0.95),
        "analysis bootstrap": float(boot[0, 0]),
        "analysis percentile CI": None if ci is None else ci[1],
        "definition": nearest_rank(list(y), 0.95),
        "reps definition": nearest_rank(list(reps), 0.95),
    }


def test_judge_probe_and_analysis_agree_on_p95() -> None:
    for n in (1, 7, 20, 100, 1000):  # 20 and 100: where the judge's old rank differed
        rng = np.random.default_rng(n)
        values = list(rng.lognormal(1.0, 1.0, n).round(3) + 0.5)
        got = former_call_sites_p95(values)
        reps = got.pop("reps definition")
        assert got.pop("analysis percentile CI") == reps, n
        assert len(set(got.values())) == 1, (n, got)


@given(st.lists(st.floats(min_value=0.5, max_value=5000.0), min_size=1, max_size=80))
def test_former_call_sites_agree_on_any_data(values: list[float]) -> None:
    got = former_call_sites_p95(values)
    reps = got.pop("reps definition")
    assert got.pop("analysis percentile CI") == reps
    assert len(set(got.values())) == 1, got


def test_quantile_bins_cut_at_observed_values() -> None:
    x = np.asarray([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    # cuts are the nearest-rank quartiles 2, 4, 6, each closing its own bin
    assert quantile_bins(x, 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert quantile_bins(np.full(6, 3.0), 3).tolist() == [0] * 6  # ties collapse
    assert np.bincount(quantile_bins(np.arange(100.0), 5)).tolist() == [20] * 5
