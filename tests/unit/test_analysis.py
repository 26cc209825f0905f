"""Validation of `ctdrill analyze` on synthetic data with a known injected CDT: recovery
inside the CI, a confounded set where the naive comparison is biased and matching is
not, no effect where none was injected, the canary difference in differences, and the
estimators' building blocks against their brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from ctdrill.analysis.bootstrap import (
    Clusters,
    fe_coefficients,
    ranked,
    replicate_quantiles,
    replicate_weights,
)
from ctdrill.analysis.data import OrderLog, Timeline
from ctdrill.analysis.estimate import fe_mean
from ctdrill.analysis.labels import HIGH, LOW, MID, UNOBSERVED, label_orders
from ctdrill.analysis.loaders import orders_from_frame, timeline_from_frame
from ctdrill.analysis.matching import match
from ctdrill.analysis.pipeline import Config, analyze
from ctdrill.analysis.results import AnalysisResult, Estimate
from ctdrill.analysis.synth import SynthData, SynthSpec, generate
from ctdrill.metrics.quantile import weighted_nearest_rank


def run(data: SynthData, **cfg: object) -> AnalysisResult:
    orders = orders_from_frame(data.orders, "log.csv")
    timeline = timeline_from_frame(data.timeline, "timeline.csv")
    return analyze(orders, timeline, Config(**cfg))  # type: ignore[arg-type]


def inside(e: Estimate, truth: float) -> bool:
    assert e.lo is not None and e.hi is not None, e
    return e.lo <= truth <= e.hi


@pytest.fixture(scope="module")
def plain() -> SynthData:
    return generate(SynthSpec(orders=40_000, hosts=6, span_s=86_400, seed=3))


@pytest.fixture(scope="module")
def confounded() -> SynthData:
    return generate(SynthSpec(orders=40_000, hosts=6, span_s=86_400, seed=5, confound=1.5))


def test_labels_reproduce_the_generators_exposure(plain: SynthData) -> None:
    orders = orders_from_frame(plain.orders, "log")
    labels = label_orders(orders, timeline_from_frame(plain.timeline, "tl"))
    assert ((labels.label == HIGH) == plain.exposed).all()
    assert labels.counts()["unobserved"] == 0 and labels.counts()["mid"] == 0


def test_label_rule_high_low_mid_unobserved() -> None:
    t = np.arange(10, dtype=np.float64)
    ctr = np.array([0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.95, 0.1, 0.1, 0.1])
    nfd = np.zeros(10)
    nfd[8] = 3.0
    tl = Timeline("tl", ("a",), np.array([0, 10]), t, ctr, nfd)
    start = np.array([0.0, 2.9, 5.6, 7.8, 50.0])
    log = OrderLog("log", ("a",), np.zeros(5, dtype=np.int64), start, start + 0.2,
                   np.zeros(5), np.ones(5), np.ones(5), np.ones(5))
    labels = label_orders(log, tl)
    # [0,0.2]+-0.5 sees t=0 (calm); [2.9,3.1] sees t=3 (0.8: between); [5.6,5.8] sees
    # t=6 (0.95); [7.8,8.0] sees t=8 (drops); t=50 is past the timeline
    assert labels.label.tolist() == [LOW, MID, HIGH, HIGH, UNOBSERVED]


def test_step_timeline_holds_state_until_the_next_change() -> None:
    t = np.array([0.0, 100.0, 200.0])
    tl = Timeline("watch", ("a",), np.array([0, 3]), t, np.array([0.0, 1.0, 0.0]),
                  np.array([0.0, 1.0, 0.0]), step=True)
    start = np.array([50.0, 120.0, 90.0, 250.0])
    end = np.array([60.0, 130.0, 110.0, 260.0])
    log = OrderLog("log", ("a",), np.zeros(4, dtype=np.int64), start, end, np.zeros(4),
                   np.ones(4), np.ones(4), np.ones(4))
    assert label_orders(log, tl).label.tolist() == [LOW, HIGH, HIGH, LOW]


def test_recovers_the_injected_cdt_inside_its_ci(plain: SynthData) -> None:
    r = run(plain)
    truth = plain.truth
    assert inside(r.matched["mean"], truth["mean"])
    assert inside(r.matched["cdt_p95"], truth["cdt_p95"])
    assert inside(r.matched["cdt_p99"], truth["cdt_p99"])
    assert r.attributable and r.verdict.startswith("CDT p95 +")
    parts = {p.name: p.estimate for p in r.parts}
    for name in ("drop_gap_bps", "state_skew_bps", "burst_recovery_bps"):
        assert inside(parts[name], truth[name]), name
    assert inside(parts["conntrack_bps"], truth["mean"])
    for name in ("impact_bps", "routing_bps"):  # untouched by pressure
        assert inside(parts[name], 0.0), name
    # the quantile regression is a conditional shift, not the CDT, but must agree in sign
    assert r.quantreg["p95"].excludes_zero and (r.quantreg["p95"].value or 0) > 0


def test_confounded_naive_is_biased_matched_is_not(confounded: SynthData) -> None:
    r = run(confounded)
    truth = confounded.truth
    m95, mean = r.matched["cdt_p95"], r.matched["mean"]
    assert inside(mean, truth["mean"]) and inside(m95, truth["cdt_p95"])
    # busy markets both fill the table and widen the tail: the naive gap overstates
    naive_mean, naive_p95 = r.naive["mean"], r.naive["cdt_p95"]
    assert naive_mean is not None and naive_p95 is not None
    assert naive_mean > (mean.hi or 0) and naive_p95 > (m95.hi or 0)
    assert naive_p95 - truth["cdt_p95"] > 3 * abs((m95.value or 0) - truth["cdt_p95"])
    vol = next(b for b in r.matching.balance if b.covariate == "volatility")
    assert vol.smd_before > 0.3 and abs(vol.smd_after) < 0.1


def test_cem_also_recovers_on_unconfounded_data(plain: SynthData) -> None:
    r = run(plain, method="cem")
    assert inside(r.matched["mean"], plain.truth["mean"])
    assert inside(r.matched["cdt_p95"], plain.truth["cdt_p95"])


def test_no_injected_effect_gives_a_ci_around_zero() -> None:
    data = generate(SynthSpec(orders=30_000, hosts=5, span_s=86_400, seed=11, effect_bps=0.0))
    r = run(data)
    assert not r.matched["cdt_p95"].excludes_zero
    assert not r.attributable and "includes zero" in r.verdict


def test_canary_bypass_is_infra_causal() -> None:
    data = generate(SynthSpec(orders=40_000, hosts=6, span_s=86_400, seed=8,
                              canary_hosts=3, canary_removes=1.0))
    r = run(data, canary="gw-00,gw-01,gw-02", change_at=data.change_at)
    assert r.canary is not None
    did = r.canary.did["cdt_p95"]
    assert r.canary.infra_causal and (did.value or 0) < 0 and did.excludes_zero
    assert inside(did, data.truth["did_cdt_p95"])
    assert r.canary.verdict.startswith("infra-causal")
    assert r.canary.control_hosts == ("gw-03", "gw-04", "gw-05")


def test_canary_without_a_real_change_is_regime_noise() -> None:
    data = generate(SynthSpec(orders=40_000, hosts=6, span_s=86_400, seed=9,
                              canary_hosts=3, canary_removes=0.0, confound=1.0))
    r = run(data, canary="gw-0[012]", change_at=data.change_at)
    assert r.canary is not None and not r.canary.infra_causal
    assert r.canary.verdict.startswith("regime noise")


def test_fe_mean_equals_explicit_host_dummies() -> None:
    rng = np.random.default_rng(0)
    n, hosts = 3000, 7
    host = rng.integers(0, hosts, n)
    x = np.column_stack([rng.random(n) < 0.3, rng.normal(size=(n, 2))]).astype(float)
    y = 2.0 * x[:, 0] + x[:, 1] + rng.normal(size=hosts)[host] + rng.normal(size=n)
    w = rng.uniform(0.2, 2.0, n)
    dummies = (host[:, None] == np.arange(hosts)).astype(float)
    ref = sm.WLS(y, np.hstack([x, dummies]), weights=w).fit().params[:3]
    fit, params = fe_mean(x, y, w, host, hosts)
    assert np.allclose(params, ref) and fit.value == pytest.approx(ref[0])
    clusters = Clusters(host * 4 + rng.integers(0, 4, n), hosts, 4)
    moments = fe_coefficients(x, y[:, None], w, clusters)[0, :, 0]
    assert np.allclose(moments, ref)


def test_bootstrap_quantiles_match_brute_force() -> None:
    rng = np.random.default_rng(1)
    n, c = 5000, 40
    y = rng.standard_t(3, n)
    w = rng.uniform(0.1, 3.0, n)
    cid = rng.integers(0, c, n)
    rep_w = replicate_weights(2, 30, c)
    fast = replicate_quantiles(ranked(y, w, cid), rep_w, (0.95, 0.99))
    for b in range(30):
        for i, q in enumerate((0.95, 0.99)):
            assert fast[b, i] == weighted_nearest_rank(y, w * rep_w[b, cid], q)
    # unit weights: the probe's nearest-rank quantile
    s = np.sort(y)
    assert weighted_nearest_rank(y, np.ones(n), 0.95) == s[int(np.ceil(0.95 * n)) - 1]


def test_matching_balances_within_host() -> None:
    rng = np.random.default_rng(4)
    n = 4000
    host = rng.integers(0, 3, n)
    vol = rng.lognormal(0, 0.4, n)
    treated = rng.random(n) < 1 / (1 + np.exp(-(vol - 1.2) * 4))
    covs = np.column_stack([vol * 2, vol, rng.random(n)])
    m = match(host, covs, rng.uniform(0, 24, n), treated)
    pairs = m.pairs
    assert (host[pairs.control] == host[pairs.anchor]).all()
    assert np.isclose(m.weight[~treated].sum(), m.matched_high)
    assert m.balance[1].smd_before > 1 and abs(m.balance[1].smd_after) < 0.15 * m.balance[1].smd_before
