"""Step trends judged against a noise floor: equal-within-noise is not a failure, and a
strict trend needs a real margin."""

from __future__ import annotations

from typing import Any

import pytest

from ctdrill.engine.judge import trend_holds
from ctdrill.spec.models import StepTrendExpectation


def trend(**fields: Any) -> StepTrendExpectation:
    return StepTrendExpectation.model_validate(
        {"kind": "step_trend", "metric": "is_bps", "source": "probe", "steps": ["a", "b"],
         "direction": "decreasing", **fields})


def test_two_healthy_values_that_differ_by_noise_count_as_equal() -> None:
    assert trend_holds(0.2608, 0.2830, trend())  # the largest wobble measured in 10 runs
    # the measured failure: max-8k = 0.3319 then max-32k = 0.3361 bps, both healthy
    assert trend_holds(0.3319, 0.3361, trend())


def test_a_real_rise_still_fails_a_decreasing_trend() -> None:
    assert not trend_holds(0.33, 0.50, trend())
    assert not trend_holds(0.33, 0.3361, trend(tolerance=0.0))


@pytest.mark.parametrize(("before", "after", "holds"), [
    (3.0, 13.0, True),    # HCP95 3 -> 13 when max grows alone: a real margin
    (3.0, 3.2, False),    # within 25 % of 3.2: noise, not a rise
    (3.0, 3.9, False),
    (3.0, 3.0, False),
])
def test_strict_increasing_needs_more_than_the_floor(before: float, after: float,
                                                     holds: bool) -> None:
    e = trend(direction="increasing", strict=True, metric="hcp95", source="metric", host="gw")
    assert trend_holds(before, after, e) is holds


def test_absolute_floor_covers_values_near_zero() -> None:
    assert not trend_holds(0.0, 0.8, trend())
    assert trend_holds(0.0, 0.8, trend(abs_tolerance=1.0))
    assert trend_holds(2285.0, 2.5, trend()) and trend_holds(2.5, 0.0, trend())


def test_floor_bounds_are_validated() -> None:
    with pytest.raises(ValueError):
        trend(tolerance=-0.1)
    with pytest.raises(ValueError):
        trend(tolerance=2)
