"""Coverage: a verdict needs samples across its window, or it fails as "no data"."""

from __future__ import annotations

from typing import Any

import pytest

from ctdrill.engine.coverage import CoveragePolicy, coverage, percent, stall_after_s
from ctdrill.engine.judge import judge
from ctdrill.engine.observed import ObservationResult, StepSpan
from ctdrill.engine.plan import refuse_unobserved_guards, unobserved_guards
from ctdrill.errors import ExitCode, InvalidInput
from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.regime.machine import RegimeInput, Transition
from ctdrill.regime.states import Regime
from ctdrill.spec.models import DrillSpec

HZ = 20.0
POLICY = CoveragePolicy(max_gap_s=0.5)  # the pinned 3-period, 0.5 s limit at HZ


@pytest.fixture(autouse=True)
def pinned_stall_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The arithmetic below is written for a 3-period, 0.5 s stall limit; the shipped
    (more tolerant) values are checked on their own."""
    import ctdrill.engine.coverage as cov

    monkeypatch.setattr(cov, "STALL_PERIODS", 3)
    monkeypatch.setattr(cov, "STALL_FLOOR_S", 0.5)


def spec(**kw: Any) -> DrillSpec:
    base: dict[str, Any] = {"drill": "t", "targets": {"hosts": "gw"}}
    base.update(kw)
    return DrillSpec.model_validate(base)


def ticks(start: float, end: float, hz: float = HZ) -> list[float]:
    """Arrival times of a stream sampling at `hz` from `start` until before `end`."""
    n = round((end - start) * hz)
    return [start + i / hz for i in range(n)]


def window(t: float, maximum: int = 65536, count: int = 100) -> WindowMetrics:
    return WindowMetrics(t=t, window_s=1, count=count, max=maximum, buckets=1024,
                         ctr=count / maximum, hcp95=1, chain_too_long_per_s=0, nfd_per_s=0,
                         nfd_fraction=0, new_flows_per_s=0, early_drop_per_s=0,
                         insert_failed_per_s=0, drops=0, table_full_events=0)


def observed(arrivals: list[float], span: tuple[float, float] = (0.0, 20.0),
             steps: list[StepSpan] | None = None) -> ObservationResult:
    """An observation of host gw whose samples arrived at `arrivals`; one window per
    sample after the first (as the sliding window yields them)."""
    return ObservationResult(
        started=span[0], span=span, arrivals={"gw": arrivals}, coverage=POLICY,
        history={"gw": [window(t) for t in arrivals[1:]]},
        transitions={"gw": []}, final_regime={"gw": "CT_HEALTHY"},
        steps=steps or [])


LAST_MAX = {"kind": "metric", "host": "gw", "metric": "max", "stat": "last",
            "op": "==", "value": 65536}


def test_the_shipped_stall_limit_is_five_periods_but_never_below_one_and_a_half_seconds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the values ctdrill ships, not the ones pinned for the arithmetic
    assert stall_after_s(20) == 1.5
    assert stall_after_s(1) == 5.0
    assert stall_after_s(200) == 1.5


def test_coverage_counts_the_time_within_the_stall_limit_after_each_sample() -> None:
    assert coverage(ticks(0, 20), 0, 20, 0.5) == pytest.approx(1.0)
    # 5 s of samples, 5 s of silence, 10 s of samples: the silence less the 0.5 s
    # after the last sample before it is not covered
    gap = ticks(0, 5) + ticks(10, 20)
    assert coverage(gap, 0, 20, 0.5) == pytest.approx((4.95 + 0.5 + 10) / 20)
    # order of arrival does not matter; samples outside the window cover only its edge
    assert coverage(list(reversed(gap)), 0, 20, 0.5) == pytest.approx(
        coverage(gap, 0, 20, 0.5))
    assert coverage([-0.2], 0, 10, 0.5) == pytest.approx(0.03)
    assert coverage([30.0], 0, 10, 0.5) == 0.0


def test_an_empty_or_unbounded_window_has_no_coverage() -> None:
    assert coverage(ticks(0, 5), 3, 3, 0.5) == 0.0
    assert coverage(ticks(0, 5), 0, float("inf"), 0.5) == 0.0
    assert coverage([], 0, 5, 0.5) == 0.0


def test_percent_rounds_down_so_a_shortfall_never_reads_as_enough() -> None:
    assert percent(0.8999) == "89 %"
    assert percent(0.9) == "90 %"
    assert percent(0.29) == "29 %"


def test_one_second_of_samples_in_a_20_s_drill_is_no_data() -> None:
    """The issue's case: 20 windows said last(max) = 65536, from the first second only."""
    v = judge(spec(expect=[LAST_MAX]).expect[0], observed(ticks(0, 1)), spec())
    assert not v.passed
    assert v.observed is None
    assert v.detail.startswith("no data (coverage 7 %, needs 90 %)")
    assert "19 windows of gw" in v.detail


def test_the_same_expectation_passes_with_samples_across_the_drill() -> None:
    v = judge(spec(expect=[LAST_MAX]).expect[0], observed(ticks(0, 20)), spec())
    assert v.passed, v.detail
    assert v.detail.endswith("coverage 100 %")


def test_a_short_gap_still_passes_and_says_its_coverage() -> None:
    # silent from 9.95 s to 11.5 s, of which 0.5 s still counts: 94.75 % covered
    arrivals = ticks(0, 10) + ticks(11.5, 20)
    v = judge(spec(expect=[LAST_MAX]).expect[0], observed(arrivals), spec())
    assert v.passed, v.detail
    assert "coverage 94 %" in v.detail


def test_a_step_is_judged_on_its_own_coverage() -> None:
    steps = [StepSpan("a", 0.0, 10.0), StepSpan("b", 10.0, 20.0)]
    s = spec(observe={"duration_s": 20},
             steps=[{"name": "a", "duration_s": 10}, {"name": "b", "duration_s": 10}],
             expect=[{**LAST_MAX, "step": "a"}, {**LAST_MAX, "step": "b"},
                     {"kind": "step_trend", "host": "gw", "metric": "max", "stat": "mean",
                      "steps": ["a", "b"], "direction": "increasing"}])
    # silent through step b but for the 0.45 s after the last sample of step a
    result = observed(ticks(0, 10), steps=steps)
    in_a, in_b, trend = (judge(e, result, s) for e in s.expect)
    assert in_a.passed, in_a.detail
    assert not in_b.passed and in_b.detail.startswith("no data (coverage 4 %")
    assert not trend.passed
    assert "b=n/a (coverage 4 %)" in trend.detail and "needs 90 % coverage" in trend.detail


def test_a_regime_record_without_data_is_not_a_healthy_run() -> None:
    """ends_in CT_HEALTHY holds trivially for a host nobody heard from."""
    s = spec(expect=[{"kind": "regime", "host": "gw", "ends_in": "CT_HEALTHY"}])
    assert judge(s.expect[0], observed(ticks(0, 20)), s).passed
    v = judge(s.expect[0], observed(ticks(0, 2)), s)
    assert not v.passed and v.detail.startswith("no data (coverage 12 %")


def test_a_regime_path_is_kept_in_the_no_data_detail() -> None:
    s = spec(expect=[{"kind": "regime", "host": "gw", "reaches": "CT_TIGHTENING"}])
    result = observed(ticks(0, 2))
    result.transitions["gw"] = [Transition(1.0, Regime.HEALTHY, Regime.TIGHTENING, "ctr",
                                           0.7, 0.75, RegimeInput(1.0, 0.75))]
    v = judge(s.expect[0], result, s)
    assert not v.passed and "path CT_HEALTHY -> CT_TIGHTENING" in v.detail


def test_the_required_coverage_comes_from_the_policy() -> None:
    result = observed(ticks(0, 10))  # half the drill
    v = judge(spec(expect=[LAST_MAX]).expect[0], result, spec())
    assert not v.passed
    result.coverage = CoveragePolicy(POLICY.max_gap_s, required=0.5)
    assert judge(spec(expect=[LAST_MAX]).expect[0], result, spec()).passed


HOSTS = {"gw": ["gw"], "venue": ["venue"], "all": ["gw", "venue"], "gw:venue": ["gw", "venue"]}


def test_a_ceiling_on_a_host_that_is_not_observed_is_refused() -> None:
    s = spec(observe={"hosts": "gw"},
             guards={"ceilings": [{"hosts": "venue", "metric": "ctr", "above": 0.5}]})
    assert unobserved_guards(s, HOSTS.__getitem__) == ["venue"]
    with pytest.raises(InvalidInput) as exc:
        refuse_unobserved_guards(s, HOSTS.__getitem__)
    assert exc.value.exit_code == ExitCode.INVALID_INPUT
    assert "venue" in exc.value.message and "observe.hosts is 'gw'" in exc.value.message


def test_a_ceiling_on_observed_hosts_is_accepted() -> None:
    for observe, ceiling in [("gw:venue", "venue"), ("all", "all")]:
        s = spec(observe={"hosts": observe},
                 guards={"ceilings": [{"hosts": ceiling, "metric": "ctr", "above": 0.5}]})
        refuse_unobserved_guards(s, HOSTS.__getitem__)
    # without observe.hosts the targets are observed
    s = spec(guards={"ceilings": [{"hosts": "gw", "metric": "ctr", "above": 0.5}]})
    refuse_unobserved_guards(s, HOSTS.__getitem__)
    s = spec(guards={"ceilings": [{"hosts": "all", "metric": "ctr", "above": 0.5}]})
    with pytest.raises(InvalidInput, match=r"targets\.hosts"):
        refuse_unobserved_guards(s, HOSTS.__getitem__)
