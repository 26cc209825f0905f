"""The analysis' speed-ups that claim "the same numbers, bit for bit" (docs/ANALYSIS.md
"Engines"), each against the slow way it replaces: cluster moments summed over matched
rows only against sums over every row, the QuantReg fits run in background threads
against the same fits one after the other, the loader's median by selection against
the sorted one, a quantile curve from one sort against each quantile on its own, and
the regression design taken from the matching's z-scores against the design made anew."""

from __future__ import annotations

import numpy as np

from ctdrill.analysis.bootstrap import (
    PARALLEL_TAIL,
    Clusters,
    cluster_moments,
    fe_coefficients,
    point_quantiles,
    ranked,
    replicate_quantiles,
    replicate_weights,
)
from ctdrill.analysis.estimate import design, design_from_z, quantreg_fe, tail_slopes
from ctdrill.analysis.labels import median_rank
from ctdrill.analysis.matching import nn_weights, standardized
from ctdrill.analysis.pipeline import _background
from ctdrill.analysis.timeparse import _median_rank
from ctdrill.metrics.quantile import (
    nearest_rank,
    weighted_nearest_rank,
    weighted_nearest_ranks,
)


def _rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, Clusters]:
    rng = np.random.default_rng(seed)
    host = rng.integers(0, 5, n)
    clusters = Clusters(host * 6 + rng.integers(0, 6, n), 5, 6)
    x = np.column_stack([rng.random(n) < 0.3, rng.normal(size=(n, 3))]).astype(float)
    y = rng.standard_t(3, size=(n, 2)) * 10
    w = np.where(rng.random(n) < 0.7, 0.0, rng.uniform(0.1, 3.0, n))  # most unmatched
    return x, y, w, clusters


def test_moments_over_matched_rows_equal_sums_over_every_row() -> None:
    x, y, w, clusters = _rows(20_000, 3)
    assert (w == 0).sum() > 10_000 and (x < 0).any()  # zero weights times negatives: -0.0
    got = cluster_moments(x, y, w, clusters).sums
    z, c = np.hstack([x, y]), clusters.size
    r = z.shape[1]
    assert np.array_equal(got[:, 0], np.bincount(clusters.id, weights=w, minlength=c))
    for j in range(r):
        wz = w * z[:, j]
        assert np.array_equal(got[:, 1 + j], np.bincount(clusters.id, weights=wz,
                                                         minlength=c))
        for k in range(j, r):  # the upper triangle, mirrored
            every = np.bincount(clusters.id, weights=wz * z[:, k], minlength=c)
            assert np.array_equal(got[:, 1 + r + j * r + k], every), (j, k)
            assert np.array_equal(got[:, 1 + r + k * r + j], every), (k, j)
    matched = w > 0
    sub = Clusters(clusters.id[matched], clusters.n_hosts, clusters.n_blocks)
    assert np.array_equal(fe_coefficients(x, y, w, clusters),
                          fe_coefficients(x[matched], y[matched], w[matched], sub))


def test_quantreg_fits_in_threads_equal_the_fits_in_turn() -> None:
    x, y, w, clusters = _rows(30_000, 4)
    host = clusters.id // clusters.n_blocks
    beta = np.linalg.lstsq(x, y[:, 0], rcond=None)[0]
    controls = np.flatnonzero(x[:, 0] == 0)
    qs = (0.95, 0.99)

    def fits() -> list[object]:
        return [(quantreg_fe, (x, y[:, 0], w + 0.5, host, clusters.id, 5, beta, q, 4000,
                               7)) for q in qs] + \
               [(tail_slopes, (x[:, 1:], y[:, 0], host, controls, 5, q, 4000, 7)) for q in qs]

    serial = [f(*a) for f, a in fits()]  # type: ignore[operator]
    with _background() as pool:
        futures = [pool.submit(f, *a) for f, a in fits()]  # type: ignore[arg-type]
        threaded = [fut.result() for fut in futures]
    for a, b in zip(serial, threaded, strict=True):
        if isinstance(a, tuple):
            assert a == b  # (Fit, rows): value and SE as floats
        else:
            assert np.array_equal(a, b)


def test_time_unit_median_by_selection_is_the_nearest_rank_median() -> None:
    """The loader guesses epoch s/ms/us/ns from the median magnitude: selection in O(n)
    gives the value sorting did (odd and even sizes, ties, one value)."""
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 10, 1001, 50_000):
        values = np.abs(rng.normal(size=n)) * 1.7e12
        values[::7] = values[0]
        assert _median_rank(values) == nearest_rank(values.tolist(), 0.5), n
        gaps = np.diff(np.sort(values))  # labels' sample gaps: partitioned in place
        if gaps.size:
            assert median_rank(gaps.copy()) == nearest_rank(gaps.tolist(), 0.5), n


def test_quantile_curve_from_one_sort_is_each_quantile_on_its_own() -> None:
    rng = np.random.default_rng(6)
    y = np.round(rng.standard_t(3, 20_000), 1)  # ties
    w = np.where(rng.random(y.size) < 0.3, 0.0, rng.uniform(0.1, 2.0, y.size))
    qs = (0.0, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999, 1.0)
    assert weighted_nearest_ranks(y, w, qs) == [weighted_nearest_rank(y, w, q) for q in qs]
    assert weighted_nearest_ranks(y, np.zeros(y.size), qs) == [None] * len(qs)


def test_design_from_the_matching_z_scores_is_the_design() -> None:
    rng = np.random.default_rng(11)
    n = 50_000
    covs = np.column_stack([rng.lognormal(1, 0.5, n), rng.gamma(2, 0.01, n),
                            rng.uniform(0, 0.2, n)])
    hour = rng.uniform(0, 24, n)
    treated = rng.random(n) < 0.2
    tod = 2 * np.pi * hour / 24
    slow = design(treated, np.column_stack([covs, np.sin(tod), np.cos(tod)]))
    fast = design_from_z(treated, standardized(covs, hour))
    assert slow.tobytes() == fast.tobytes()  # bit for bit, -0.0 and all


def _brute_force_nn(group: np.ndarray, z: np.ndarray, treated: np.ndarray, k: int,
                    caliper: float) -> np.ndarray:
    """The ATT weights by every distance, group by group, one high order at a time."""
    w = np.zeros(treated.size)
    for g in np.unique(group):
        t_idx = np.flatnonzero((group == g) & treated)
        c_idx = np.flatnonzero((group == g) & ~treated)
        for t in t_idx:
            d = np.sqrt(((z[c_idx] - z[t]) ** 2).sum(axis=1))
            nearest = np.argsort(d, kind="stable")[:k]
            near = nearest[d[nearest] <= caliper]
            if near.size:
                w[t] = 1.0
                np.add.at(w, c_idx[near], 1.0 / near.size)
    return w


def test_neighbours_found_two_cells_at_a_time_are_the_nearest() -> None:
    rng = np.random.default_rng(5)
    n = 6_000
    group = rng.integers(0, 7, n)
    z = rng.normal(size=(n, 5))
    treated = rng.random(n) < 0.15
    treated[group == 6] = False  # a cell with no high order is skipped
    w, pairs = nn_weights(group, z, treated, 3, 1.2)
    assert np.allclose(w, _brute_force_nn(group, z, treated, 3, 1.2), rtol=0, atol=1e-12)
    assert 0 < int((w[treated] == 0).sum()) < int(treated.sum())  # the caliper bites
    # pairs come cell by cell in group order, as the one-thread loop made them
    assert (np.diff(group[pairs.anchor]) >= 0).all()
    assert np.array_equal(pairs.target_z, z[pairs.anchor])


def test_replicates_of_a_long_tail_in_two_threads_and_points_from_one_sort() -> None:
    rng = np.random.default_rng(8)
    n, c = 300_000, 60  # a tail above PARALLEL_TAIL rows: the two-thread path
    y = rng.standard_t(3, n)
    w = np.where(rng.random(n) < 0.1, 0.0, rng.uniform(0.1, 3.0, n))
    cid = rng.integers(0, c, n)
    rep_w = replicate_weights(3, 6, c)
    r = ranked(y, w, cid)
    assert r is not None  # the tail above 0.2 - 0.15 of the weight is cumulated per replicate
    assert r.ys.size - np.searchsorted(r.cum, 0.05 * r.cum[-1]) >= PARALLEL_TAIL
    fast = replicate_quantiles(r, rep_w, (0.2, 0.95))
    for b in range(6):
        for i, q in enumerate((0.2, 0.95)):
            assert fast[b, i] == weighted_nearest_rank(y, w * rep_w[b, cid], q)
    assert point_quantiles(r, (0.5, 0.95)) == [weighted_nearest_rank(y, w, 0.5),
                                               weighted_nearest_rank(y, w, 0.95)]
    assert point_quantiles(ranked(y, np.zeros(n), cid), (0.5,)) == [None]
