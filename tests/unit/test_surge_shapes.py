"""Shapes become exact cumulative schedules; the per-batch token bucket follows them."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctdrill.surge.pacer import BatchPacer
from ctdrill.surge.shapes import (
    EventSchedule,
    RateSchedule,
    Segment,
    fill_schedule,
    profile_segments,
    schedule_from_json,
    shape_schedule,
)
from ctdrill.surge.spec import (
    BurstShape,
    ConstantShape,
    MaxShape,
    RampShape,
    RateStep,
    ReplayShape,
    StepShape,
)


def test_constant_is_rate_times_time() -> None:
    s = shape_schedule(ConstantShape(kind="constant", rate=1000, duration_s=2))
    assert s.due(0.5) == pytest.approx(500)
    assert s.total() == pytest.approx(2000)
    assert s.due(5) == pytest.approx(2000)
    assert s.time_for(1500) == pytest.approx(1.5)
    assert s.time_for(2001) == math.inf


def test_step_pauses_and_resumes() -> None:
    s = shape_schedule(StepShape(kind="step", steps=[
        RateStep(rate=100, duration_s=1), RateStep(rate=0, duration_s=1),
        RateStep(rate=300, duration_s=1)]))
    assert s.due(1.5) == pytest.approx(100)
    assert s.rate_at(1.5) == 0
    assert s.due(2.5) == pytest.approx(250)
    assert s.time_for(101) == pytest.approx(2 + 1 / 300)
    assert s.duration == 3


def test_ramp_integrates_linearly() -> None:
    s = shape_schedule(RampShape(kind="ramp", from_rate=0, to_rate=1000, duration_s=2))
    assert s.due(1) == pytest.approx(250)  # area of the triangle up to t=1
    assert s.total() == pytest.approx(1000)
    assert s.rate_at(1) == pytest.approx(500)
    assert s.time_for(250) == pytest.approx(1)


def test_burst_train_has_gaps_between_bursts_only() -> None:
    s = shape_schedule(BurstShape(kind="burst", rate=1000, on_s=0.5, off_s=1, count=3))
    assert s.duration == pytest.approx(3 * 0.5 + 2 * 1)
    assert s.total() == pytest.approx(1500)
    assert s.rate_at(0.7) == 0
    assert s.rate_at(1.6) == 1000


def test_replay_profile_holds_each_rate_until_the_next_row() -> None:
    points = [(10.0, 100.0), (11.0, 300.0), (12.0, 200.0)]
    s = shape_schedule(ReplayShape(kind="replay", profile="x.csv", scale=2), points)
    assert s.duration == pytest.approx(3)  # relative to the first row; last holds 1 s
    assert s.due(1) == pytest.approx(200)
    assert s.total() == pytest.approx(1200)
    assert [seg.rate0 for seg in profile_segments(points)] == [100, 300, 200]


def test_max_is_unpaced_and_bounded_by_time() -> None:
    s = shape_schedule(MaxShape(kind="max", duration_s=3))
    assert not s.paced and s.duration == 3 and s.total() == math.inf


def test_schedules_survive_json_and_scale_to_worker_shares() -> None:
    s = shape_schedule(RampShape(kind="ramp", from_rate=100, to_rate=300, duration_s=4))
    assert isinstance(s, RateSchedule)
    back = schedule_from_json(s.to_json())
    assert back.due(2.5) == pytest.approx(s.due(2.5))
    assert s.scaled(0.5).total() == pytest.approx(s.total() / 2)
    ev = schedule_from_json(EventSchedule([0.5, 0.1, 0.3]).to_json())
    assert ev.due(0.3) == 2 and ev.time_for(3) == 0.5


def test_fill_schedule() -> None:
    assert fill_schedule(1000, 500, 60).duration == pytest.approx(2)
    assert not fill_schedule(1000, None, 60).paced


@given(st.floats(1, 1e6), st.floats(0, 1e6), st.floats(0.1, 100), st.floats(0, 1))
def test_time_for_inverts_due(r0: float, r1: float, dur: float, frac: float) -> None:
    s = RateSchedule([Segment(0, dur, r0, r1)])
    n = s.total() * frac
    t = s.time_for(n)
    assert 0 <= t <= dur + 1e-9
    assert s.due(t) == pytest.approx(n, rel=1e-6, abs=1e-3)


def simulate(pacer: BatchPacer, step: float = 0.0005, until: float = 100) -> list[tuple[float, int]]:
    """Drive the pacer on a virtual clock; returns (time, sent) after each send."""
    t, sent, out = 0.0, 0, []
    while t < until:
        g = pacer.grant(t, sent)
        if g.done:
            break
        if g.n:
            sent += g.n
            out.append((t, sent))
            t += step
        else:
            t += max(g.wait, 1e-6)
    return out


@pytest.mark.parametrize("rate", [1000, 20000, 150000])
def test_pacer_follows_the_schedule_within_one_batch(rate: float) -> None:
    s = shape_schedule(ConstantShape(kind="constant", rate=rate, duration_s=2))
    trace = simulate(BatchPacer(s), step=0.0)
    assert trace[-1][1] == round(s.total())
    batch = max(1, min(1024, int(rate * 0.002)))
    for t, sent in trace:
        assert sent <= s.due(t) + 1e-6  # never ahead of the schedule
        assert sent >= s.due(t) - batch - 1


def test_pacer_low_rate_sends_single_flows() -> None:
    s = shape_schedule(ConstantShape(kind="constant", rate=100, duration_s=1))
    trace = simulate(BatchPacer(s), step=0.0)
    assert all(b - a == 1 for (_, a), (_, b) in itertools.pairwise(trace))


def test_pacer_forgives_a_stall_instead_of_bursting() -> None:
    s = shape_schedule(ConstantShape(kind="constant", rate=100000, duration_s=10))
    pacer = BatchPacer(s, debt_s=0.05)
    g = pacer.grant(2.0, 0)  # 2 s behind: 200k owed
    assert g.n == 1024
    assert pacer.forgiven == 200000 - 5000


def test_pacer_limit_and_unpaced() -> None:
    s = shape_schedule(MaxShape(kind="max", duration_s=1))
    pacer = BatchPacer(s, limit=1500)
    assert pacer.grant(0.1, 0).n == 1024
    assert pacer.grant(0.1, 1024).n == 476
    assert pacer.grant(0.1, 1500).done
    assert BatchPacer(s).grant(1.0, 0).done


def test_pacer_sends_the_tail_and_stops() -> None:
    s = shape_schedule(ConstantShape(kind="constant", rate=1000, duration_s=1.0005))
    trace = simulate(BatchPacer(s), step=0.0)
    assert trace[-1][1] == math.floor(s.total())
