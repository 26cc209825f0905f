"""Execution outcomes per pressure regime (docs/ANALYSIS.md "Execution outcomes"): on a
synthetic desk with a known injected effect per outcome, each matched estimate covers the
truth (as the CDT's validation does), matching removes the confounded naive bias, no
effect gives CIs around zero; the episode windows and the outcome columns against hand
cases; a log without the columns skips the sections, naming the column, never failing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ctdrill.analysis.data import CANCEL_REPLACE, PASSIVE_FILL, OrderLog, Timeline
from ctdrill.analysis.labels import HIGH, episode_windows, label_orders
from ctdrill.analysis.loaders import orders_from_frame, timeline_from_frame
from ctdrill.analysis.pipeline import Config, analyze
from ctdrill.analysis.report import render_html, render_markdown
from ctdrill.analysis.results import AnalysisResult, Outcome
from ctdrill.analysis.synth import SynthData, SynthSpec, generate
from ctdrill.errors import InvalidInput

OUTCOME_COLUMNS = ["passive_fill_ratio", "cancels", "replaces", "markout_1s_bps",
                   "markout_10s_bps"]


def run(data: SynthData, orders: pd.DataFrame | None = None, **cfg: object) -> AnalysisResult:
    log = orders_from_frame(data.orders if orders is None else orders, "log.csv")
    return analyze(log, timeline_from_frame(data.timeline, "tl.csv"),
                   Config(**cfg))  # type: ignore[arg-type]


def truth_key(o: Outcome) -> str:
    return o.name if o.comparison == "high vs low" else \
        f"cancel_replace_{o.comparison.split()[0]}"


def by_key(r: AnalysisResult) -> dict[str, Outcome]:
    assert r.outcomes is not None
    return {truth_key(o): o for o in r.outcomes.outcomes}


@pytest.fixture(scope="module")
def plain() -> SynthData:
    return generate(SynthSpec(orders=40_000, hosts=6, span_s=86_400, seed=102))


@pytest.fixture(scope="module")
def confounded() -> SynthData:
    return generate(SynthSpec(orders=40_000, hosts=6, span_s=86_400, seed=102, confound=1.5))


EXPECTED = {"passive_fill_ratio", "cancel_replace_before", "cancel_replace_during",
            "cancel_replace_after", "markout_1s_bps", "markout_10s_bps"}


@pytest.mark.parametrize("which", ["plain", "confounded"])
def test_each_outcome_recovers_its_injected_effect(which: str,
                                                   request: pytest.FixtureRequest) -> None:
    data: SynthData = request.getfixturevalue(which)
    r = run(data)
    outcomes = by_key(r)
    assert set(outcomes) == EXPECTED and r.outcomes is not None and not r.outcomes.skipped
    for key, o in outcomes.items():
        e = o.estimate
        assert e.lo is not None and e.hi is not None, key
        assert e.lo <= data.truth[key] <= e.hi, (key, e, data.truth[key])
        assert e.excludes_zero, key  # every injected effect is detected
        assert o.n_high > 1000 and o.n_low > o.n_high, key
    # the signs the generator injected: fewer passive fills, more cancel/replace, worse
    # markouts under pressure; cancel/replace is highest during the episode
    assert (outcomes["passive_fill_ratio"].estimate.value or 0) < 0
    during = outcomes["cancel_replace_during"].estimate.value or 0
    assert during > (outcomes["cancel_replace_before"].estimate.value or 0) > 0


def test_confounded_naive_gaps_are_biased_matched_are_not(confounded: SynthData) -> None:
    outcomes = by_key(run(confounded))
    # busy markets fill the table and also cut passive fills and raise cancel rates
    fill = outcomes["passive_fill_ratio"]
    assert fill.naive is not None and fill.estimate.lo is not None
    assert fill.naive < fill.estimate.lo
    assert abs(fill.naive - confounded.truth["passive_fill_ratio"]) > \
        5 * abs((fill.estimate.value or 0) - confounded.truth["passive_fill_ratio"])
    during = outcomes["cancel_replace_during"]
    assert during.naive is not None and during.naive > (during.estimate.value or 0)


def test_no_injected_effect_gives_cis_around_zero() -> None:
    data = generate(SynthSpec(orders=30_000, hosts=5, span_s=86_400, seed=102,
                              fill_effect=0.0, cr_effects_per_min=(0.0, 0.0, 0.0),
                              markout_effects_bps=(0.0, 0.0)))
    outcomes = by_key(run(data))
    assert set(outcomes) == EXPECTED
    for key, o in outcomes.items():
        assert o.estimate.lo is not None and not o.estimate.excludes_zero, (key, o.estimate)


def test_window_counts_match_the_generators_own_windows(plain: SynthData) -> None:
    log = orders_from_frame(plain.orders, "log")
    tl = timeline_from_frame(plain.timeline, "tl")
    labels = label_orders(log, tl)
    before, after = episode_windows(log, tl, labels, 0.9, 60.0)
    r = run(plain)
    assert r.outcomes is not None
    assert r.outcomes.orders == {"before": int(before.sum()),
                                 "during": int(plain.exposed.sum()),
                                 "after": int(after.sum()),
                                 "calm": int((~plain.exposed & ~before & ~after).sum())}
    assert not (before & plain.exposed).any() and (before & after).any()


def test_episode_windows_by_hand() -> None:
    t = np.arange(0.0, 400.0)
    ctr = np.full(400, 0.3)
    ctr[100:105] = 0.95  # episode 1 (CTR high)
    ctr[150:152] = 0.95  # episode 2, 45 s after the first ended
    tl = Timeline("tl", ("a",), np.array([0, 400]), t, ctr, np.zeros(400))
    start = np.array([30.0, 50.0, 101.0, 110.0, 120.0, 200.0, 260.0])
    end = start + 2.0
    log = OrderLog("log", ("a",), np.zeros(7, dtype=np.int64), start, end, np.zeros(7),
                   np.ones(7), np.ones(7), np.ones(7))
    labels = label_orders(log, tl)
    before, after = episode_windows(log, tl, labels, 0.9, 60.0)
    # [30,32]: next high sample 100 > 32.5 + 60; [50,52]: 100 within 52.5..112.5;
    # [101,103]: during; [110,112] and [120,122]: after episode 1, before episode 2;
    # [200,202]: 151 is within 139.5..199.5 (after); [260,262]: nothing within 60 s
    assert labels.label[2] == HIGH
    assert before.tolist() == [False, True, False, True, True, False, False]
    assert after.tolist() == [False, False, False, True, True, True, False]
    assert episode_windows(log, tl, labels, 0.9, 10.0)[1].tolist() == \
        [False, False, False, True, False, False, False]


def test_a_log_without_the_columns_skips_each_section_by_name(plain: SynthData) -> None:
    r = run(plain, orders=plain.orders.drop(columns=OUTCOME_COLUMNS))
    assert r.outcomes is not None and r.outcomes.outcomes == ()
    assert r.outcomes.skipped == {
        "passive_fill": "no column passive_fill_ratio (nor passive_filled_qty and filled_qty)",
        "cancel_replace": "no column cancels or replaces",
        "markout": "no column markout_<horizon>_bps (e.g. markout_5s_bps)"}
    md = render_markdown(r)
    assert "Execution outcomes skipped" in md and "| cancel/replace | no column cancels" in md
    assert "Execution outcomes under pressure" not in md
    assert r.matched["cdt_p95"].value is not None  # the CDT is unaffected


def test_one_column_of_a_pair_names_the_other(plain: SynthData) -> None:
    df = plain.orders.drop(columns=["passive_fill_ratio", "replaces", "markout_10s_bps"])
    df["passive_filled_qty"] = 10.0
    log = orders_from_frame(df, "log.csv")
    assert log.skipped == {"passive_fill": "no column filled_qty (the ratio is "
                                           "passive_filled_qty / filled_qty)"}
    assert set(log.outcomes) == {CANCEL_REPLACE, "markout_1s_bps"}
    r = run(plain, orders=df)
    assert r.outcomes is not None
    assert [truth_key(o) for o in r.outcomes.outcomes] == [
        "cancel_replace_before", "cancel_replace_during", "cancel_replace_after",
        "markout_1s_bps"]
    assert "no column filled_qty" in render_html(r)


def frame(**extra: list[object]) -> pd.DataFrame:
    n = len(next(iter(extra.values())))
    return pd.DataFrame({"order_id": range(n), "host": ["a"] * n,
                         "start": [1_714_521_600.0 + i for i in range(n)],
                         "end": [1_714_521_630.0 + i for i in range(n)], "is_bps": 1.0,
                         "spread_bps": 1.0, "volatility": 1.0, "participation": 0.1,
                         **extra})


def test_outcome_columns_are_derived_as_documented() -> None:
    log = orders_from_frame(frame(passive_filled_qty=[30, 0, 5, None],
                                  filled_qty=[100, 0, 5, 10], cancels=[3, 1, None, 0],
                                  MarkOut_5s_BPS=[1.5, None, -2, 0], markout_5s=[9, 9, 9, 9]),
                            "log.csv")
    fill = log.outcomes[PASSIVE_FILL]
    assert fill[0] == 0.3 and np.isnan(fill[1]) and fill[2] == 1.0 and np.isnan(fill[3])
    rate = log.outcomes[CANCEL_REPLACE]  # per minute of a 30 s life
    assert rate[0] == 6.0 and rate[1] == 2.0 and np.isnan(rate[2]) and rate[3] == 0.0
    assert set(log.outcomes) == {PASSIVE_FILL, CANCEL_REPLACE, "markout_5s_bps"}
    assert np.isnan(log.outcomes["markout_5s_bps"][1])
    zero_life = frame(replaces=[2, 4])
    zero_life["end"] = zero_life["start"]
    assert np.isnan(orders_from_frame(zero_life, "log").outcomes[CANCEL_REPLACE]).all()


@pytest.mark.parametrize(("extra", "needle"), [
    ({"passive_fill_ratio": [0.5, 1.2]}, "column 'passive_fill_ratio' row 2 is not a "
                                         "number in 0..1: '1.2'"),
    ({"cancels": [1, -1]}, "column 'cancels' row 2 is not a number >= 0"),
    ({"markout_1s_bps": ["1", "x"]}, "column 'markout_1s_bps' row 2 is not a number"),
    ({"passive_filled_qty": [5, 11], "filled_qty": [5, 10]},
     "row 2 has passive_filled_qty above filled_qty"),
])
def test_bad_outcome_values_are_one_error_naming_the_row(extra: dict[str, list[object]],
                                                         needle: str) -> None:
    with pytest.raises(InvalidInput) as err:
        orders_from_frame(frame(**extra), "log.csv")
    assert needle in err.value.one_line() and "log.csv" in err.value.one_line()
