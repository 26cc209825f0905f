"""Probe metric maths: joins, gaps, bursts, OSD, the IS proxy and CDT (quantiles:
tests/unit/test_quantile.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctdrill.probe.metrics import (
    Message,
    PressureSample,
    cdt,
    gaps,
    is_proxy,
    join,
    label,
    max_burst,
    window,
)
from ctdrill.probe.spec import DriftModel, ProbeSpec

DRIFT = DriftModel(mu_bps_per_s=2.0, sigma_bps_per_sqrt_s=10.0, retry_penalty_bps=0.5,
                   timeout_penalty_bps=25.0)


def msg(sent: float, dwell: float | None, attempts: int = 1, accepted_after: float = 0.0005,
        verb: str = "NEW") -> Message:
    return Message(id=f"t{sent}", verb=verb, proto="tcp", sent=sent,
                   acked=None if dwell is None else sent + dwell, filled=None,
                   attempts=attempts, accepted=sent + accepted_after)


def test_join_pairs_client_messages_with_venue_ground_truth() -> None:
    client = [{"ev": "start"},
              {"ev": "msg", "id": "t1", "verb": "NEW", "proto": "tcp", "sent": 1.0,
               "acked": 1.5, "filled": None, "attempts": 2},
              {"ev": "msg", "id": "t1", "verb": "CXL", "proto": "tcp", "sent": 2.0,
               "acked": None, "filled": None, "attempts": 3}]
    venue = [{"ev": "accept", "id": "t1", "verb": "NEW", "t": 1.4},
             {"ev": "accept", "id": "t1", "verb": "NEW", "t": 1.45}]  # a retry seen twice
    msgs = join(client, venue)
    assert [m.verb for m in msgs] == ["NEW", "CXL"]
    assert msgs[0].accepted == 1.4 and msgs[0].osd == pytest.approx(0.1)
    assert msgs[1].accepted is None and msgs[1].timed_out and msgs[1].osd is None


def test_gaps_and_bursts() -> None:
    assert gaps([3.0, 1.0, 2.0]) == [1.0, 1.0]
    times = [0.0, 1.0, 1.01, 1.02, 1.03, 2.0]
    assert max_burst(times, 0.05) == 4
    assert max_burst([], 0.05) == 0


@given(st.lists(st.floats(min_value=0, max_value=100), max_size=200),
       st.floats(min_value=0.001, max_value=10))
def test_burst_is_at_least_one_and_at_most_all(times: list[float], w: float) -> None:
    b = max_burst(times, w)
    assert (b == 0) == (not times)
    assert b <= len(times)


def test_is_proxy_model() -> None:
    m = msg(0.0, 1.0)
    expected = 2.0 * 1.0 + 10.0 * math.sqrt(2 / math.pi) * 1.0
    assert is_proxy(m, DRIFT, 2.0) == pytest.approx(expected)
    assert is_proxy(msg(0.0, 1.0, attempts=3), DRIFT, 2.0) == pytest.approx(expected + 1.0)
    timed_out = is_proxy(msg(0.0, None, attempts=3), DRIFT, 2.0)
    d = 6.0
    assert timed_out == pytest.approx(2 * d + 10 * math.sqrt(2 / math.pi) * math.sqrt(d)
                                      + 1.0 + 25.0)


@given(st.floats(min_value=0, max_value=30), st.floats(min_value=0, max_value=30))
def test_is_proxy_grows_with_delay(d1: float, d2: float) -> None:
    lo, hi = sorted((d1, d2))
    assert is_proxy(msg(0, lo), DRIFT, 2.0) <= is_proxy(msg(0, hi), DRIFT, 2.0)


def test_window_metrics() -> None:
    msgs = [msg(0.1 * i, 0.001) for i in range(10)] + [msg(0.95, None, attempts=3)]
    w = window(msgs, 0.0, 1.0, DRIFT, 2.0, 0.05)
    assert w.messages == 11 and w.timeouts == 1 and w.retried == 1
    assert w.dwell_ms["p50"] == pytest.approx(1.0)
    assert w.ack_gap_ms["p50"] == pytest.approx(100.0)
    assert w.is_bps["max"] is not None and w.is_bps["max"] > 25


def test_labels_need_evidence() -> None:
    pressure = [PressureSample(t, ctr, nfd) for t, ctr, nfd in
                [(0.0, 0.1, 0), (1.0, 0.95, 0), (2.0, 0.8, 10), (3.0, 0.75, 0), (4.0, 0.1, 0)]]
    assert label(0.0, 0.5, pressure, 0.9, 0.7) == "low"
    assert label(0.5, 1.5, pressure, 0.9, 0.7) == "high"
    assert label(1.5, 2.5, pressure, 0.9, 0.7) == "high"  # drops
    assert label(2.5, 3.5, pressure, 0.9, 0.7) is None  # in between: not matched
    assert label(10, 11, pressure, 0.9, 0.7) is None  # no samples


def test_cdt_is_the_incremental_tail_under_pressure() -> None:
    pressure = [PressureSample(t / 10, 0.1 if t < 50 else 0.99, 0) for t in range(100)]
    calm = [msg(i / 10, 0.001) for i in range(5, 45)]
    hot = [msg(i / 10, 1.0 if i % 2 else 0.001) for i in range(55, 95)]
    c = cdt(calm + hot, pressure, DRIFT, 2.0)
    assert c.low_orders == 40 and c.high_orders == 40
    assert c.p95_bps is not None and c.p95_bps > 5
    flat = cdt(calm, pressure, DRIFT, 2.0)
    assert flat.p95_bps is None  # no high-pressure window: nothing to compare


def test_probe_spec_defaults() -> None:
    s = ProbeSpec()
    assert s.client == "client" and s.venue == "venue" and s.proto == "tcp"


def test_fill_reports_on_new_flows_give_state_skew() -> None:
    client = [{"ev": "msg", "id": "t1", "verb": "NEW", "proto": "tcp", "sent": 1.0,
               "acked": 1.001, "attempts": 1},
              {"ev": "msg", "id": "t2", "verb": "NEW", "proto": "tcp", "sent": 1.0,
               "acked": 1.001, "attempts": 1},
              {"ev": "fill", "id": "t1", "t": 2.5}]
    venue = [{"ev": "accept", "id": "t1", "verb": "NEW", "t": 1.0005},
             {"ev": "accept", "id": "t2", "verb": "NEW", "t": 1.0005},
             {"ev": "fill", "id": "t1", "t": 1.01}, {"ev": "fill", "id": "t2", "t": 1.01}]
    m1, m2 = join(client, venue)
    assert m1.osd == pytest.approx(1.49)  # the report arrived 1.49 s after the fill
    assert not m1.lost_report
    assert m2.lost_report and m2.osd == pytest.approx(0.0005)
