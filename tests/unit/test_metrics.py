from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctdrill.metrics.conntrack import (
    counter_delta,
    ctr,
    hcp,
    poisson_quantile,
    window_metrics,
)
from ctdrill.metrics.window import SlidingWindow
from ctdrill.telemetry.protocol import Sample, TableFullEvent


def sample(t: float, count: int, mx: int = 1000, buckets: int = 1000, **stat: int) -> Sample:
    return Sample(seq=int(t * 10), t=t, received=t, count=count, max=mx, buckets=buckets,
                  stat=dict(stat))


def brute_poisson_quantile(lam: float, q: float) -> int:
    cdf, k = 0.0, 0
    while True:
        cdf += math.exp(-lam) * lam**k / math.factorial(k)
        if cdf >= q:
            return k
        k += 1


def test_ctr_is_count_over_max_and_safe_for_unknown_max() -> None:
    assert ctr(500, 1000) == 0.5
    assert ctr(10, 0) == 0.0


@pytest.mark.parametrize("lam", [0.01, 0.5, 1.0, 2.0, 5.0, 20.0, 60.0])
@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
def test_poisson_quantile_matches_brute_force(lam: float, q: float) -> None:
    assert poisson_quantile(lam, q) == brute_poisson_quantile(lam, q)


def test_hcp95_follows_the_doubled_load_factor() -> None:
    # max == buckets and a full table: lambda = 2, p95 of Poisson(2) is 5
    assert hcp(262144, 262144) == 5
    assert hcp(0, 262144) == 0
    # raising max without buckets: 4x entries per bucket -> longer chains
    assert hcp(4 * 262144, 262144) > hcp(262144, 262144)
    assert hcp(10, 0) == 0


def test_poisson_quantile_handles_huge_load_without_overflow() -> None:
    k = poisson_quantile(5000.0, 0.95)
    assert 5000 < k < 5000 + 3 * math.sqrt(5000)


@given(st.floats(min_value=0.0, max_value=200.0), st.floats(min_value=0.01, max_value=0.99))
def test_poisson_quantile_is_monotone_in_q(lam: float, q: float) -> None:
    assert poisson_quantile(lam, q) <= poisson_quantile(lam, min(0.999, q + 0.005))


def test_counter_delta_treats_reset_as_zero() -> None:
    assert counter_delta({"drop": 5}, {"drop": 9}, "drop") == 4
    assert counter_delta({"drop": 9}, {"drop": 2}, "drop") == 0
    assert counter_delta({}, {}, "drop") == 0


def test_window_metrics_rates_and_nfd_fraction() -> None:
    a = sample(10.0, 900, drop=0, early_drop=0, chainlength=0)
    b = sample(12.0, 1000, drop=300, early_drop=100, chainlength=4, insert_failed=2)
    m = window_metrics(a, b, events_in_window=3)
    assert m.ctr == 1.0
    assert m.nfd_per_s == 150.0
    # attempts = grown 100 + early 100 + drops 300
    assert m.nfd_fraction == pytest.approx(300 / 500)
    assert m.new_flows_per_s == 100.0
    assert m.early_drop_per_s == 50.0
    assert m.insert_failed_per_s == 1.0
    assert m.chain_too_long_per_s == 2.0
    assert m.table_full_events == 3
    assert m.drops == 300


def test_window_metrics_without_attempts_has_zero_fraction() -> None:
    m = window_metrics(sample(1.0, 10), sample(2.0, 5))
    assert m.nfd_fraction == 0.0
    assert m.new_flows_per_s == 0.0


def test_window_metrics_rejects_time_reversal() -> None:
    with pytest.raises(ValueError):
        window_metrics(sample(2.0, 1), sample(1.0, 1))


def test_sliding_window_keeps_about_the_window() -> None:
    w = SlidingWindow(1.0)
    assert w.push(sample(0.0, 0, drop=0)) is None
    out = None
    for i in range(1, 41):  # 20 Hz for 2 s, one drop per tick
        out = w.push(sample(i * 0.05, i, drop=i))
    assert out is not None
    assert 1.0 <= out.window_s <= 1.05
    assert out.nfd_per_s == pytest.approx(20.0, rel=0.06)


def test_sliding_window_counts_events_inside_it() -> None:
    w = SlidingWindow(10.0)
    ev = (TableFullEvent(1, "nf_conntrack: table full in netns 1, dropping packet"),)
    w.push(sample(0.0, 0))
    w.push(Sample(1, 1.0, 1.0, 1, 10, 10, {}, ev))
    m = w.push(Sample(2, 2.0, 2.0, 1, 10, 10, {}, ev))
    assert m is not None and m.table_full_events == 2
