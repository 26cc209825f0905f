"""Per-order pressure features (`ctdrill analyze --features`, docs/ANALYSIS.md): every
column against a hand computation on a tiny timeline, the regime machine's shortcut over
calm samples against feeding it every sample, a watch stream's own regimes, and the file
round-tripping through pandas (Parquet and CSV), one row per order, keyed by order_id."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctdrill.analysis import export
from ctdrill.analysis.config import Config
from ctdrill.analysis.data import OrderLog, Timeline
from ctdrill.analysis.features import COLUMNS, check_keys, pressure_features
from ctdrill.analysis.loaders import load_timeline, orders_from_frame
from ctdrill.analysis.regimes import machine_levels
from ctdrill.errors import InvalidInput
from ctdrill.regime import RegimeInput, RegimeMachine

T = 1_714_521_600.0


def tiny() -> tuple[OrderLog, Timeline]:
    """Host a: 10 samples at 1 Hz, a tightening ramp, CTR high, one second of drops.
    Host c: 6 samples with drops at 1-2 and again at 4. Host b: orders, no samples."""
    t_a, t_c = T + np.arange(10.0), T + np.arange(6.0)
    ctr = np.array([0.5, 0.5, 0.75, 0.75, 0.95, 0.95, 0.95, 0.5, 0.5, 0.5, *[0.5] * 6])
    nfd = np.zeros(16)
    nfd[5] = 3.0
    nfd[[11, 12, 14]] = [2.0, 2.0, 1.0]
    tl = Timeline("tl", ("a", "c"), np.array([0, 10, 16]), np.concatenate([t_a, t_c]), ctr,
                  nfd)
    start = T + np.array([1.0, 7.2, 9.2, 1.0, 20.0, 2.0])
    end = T + np.array([6.0, 7.4, 12.0, 2.0, 21.0, 4.0])
    df = pd.DataFrame({"order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
                       "host": ["a", "a", "a", "b", "a", "c"], "start": start, "end": end,
                       "is_bps": 0.0, "spread_bps": 1.0, "volatility": 1.0,
                       "participation": 0.1})
    return orders_from_frame(df, "log.csv"), tl


def test_every_column_against_a_hand_computation() -> None:
    orders, tl = tiny()
    f = pressure_features(orders, tl, Config()).set_index("order_id")
    assert list(f.reset_index().columns) == list(COLUMNS) and len(f) == 6
    # The machine on host a (docs/REGIME.md): healthy; CTR 0.75 at t=2 -> tightening;
    # CTR 0.95 from t=4 is not yet sustained (1 s) when drops at t=5 -> pressured, held by
    # CTR to t=6, by the NFD quiet timer to t=8, then by the 5 s dwell past t=9.
    # Segments (pad 0.5): healthy [-0.5, 2), tightening [2, 5), pressured [5, 9.5].
    o1 = f.loc["o1"]  # [1, 6], sees samples 1..6
    assert (o1.host, o1.pressure_label, o1.samples) == ("a", "high", 6)
    assert o1.ctr_max == 0.95 and o1.ctr_mean == pytest.approx((0.5 + 0.75 * 2 + 0.95 * 3) / 6)
    assert (o1.nfd_max, o1.nfd_mean, o1.table_full_events) == (3.0, 0.5, 1.0)
    assert o1.exposure == 0.5  # 3 of its 6 samples are high
    assert (o1.regime_start, o1.regime_end) == ("CT_HEALTHY", "CT_PRESSURED")
    assert [o1.time_healthy_s, o1.time_tightening_s, o1.time_pressured_s,
            o1.time_safe_contain_s] == pytest.approx([1.0, 3.0, 1.0, 0.0])
    o2 = f.loc["o2"]  # [7.2, 7.4]: sample 7 only, calm, but the regime is still pressured
    assert (o2.pressure_label, o2.samples, o2.ctr_max, o2.table_full_events) == \
        ("low", 1, 0.5, 0.0)
    assert (o2.regime_start, o2.regime_end) == ("CT_PRESSURED", "CT_PRESSURED")
    assert o2.time_pressured_s == pytest.approx(0.2, abs=1e-6)
    o3 = f.loc["o3"]  # [9.2, 12]: the samples stop at 9 (+ pad): the end is unobserved
    assert (o3.samples, o3.regime_start) == (1, "CT_PRESSURED") and pd.isna(o3.regime_end)
    assert o3.time_pressured_s == pytest.approx(0.3, abs=1e-6) and o3.time_healthy_s == 0.0
    o4 = f.loc["o4"]  # host b has no samples at all
    assert (o4.pressure_label, o4.samples) == ("unobserved", 0) and pd.isna(o4.regime_start)
    assert f.loc["o4", ["ctr_max", "exposure", "table_full_events", "time_healthy_s"]] \
        .isna().all()
    o5 = f.loc["o5"]  # host a, after its samples: observed host, nothing seen
    assert (o5.pressure_label, o5.samples) == ("unobserved", 0) and pd.isna(o5.regime_start)
    assert np.isnan(o5.ctr_max) and np.isnan(o5.table_full_events)
    o6 = f.loc["o6"]  # host c, [2, 4] sees 2..4: a drop run from before (1-2), one at 4
    assert (o6.table_full_events, o6.nfd_max, o6.nfd_mean) == (2.0, 2.0, 1.0)
    assert (o6.regime_start, o6.regime_end, o6.time_pressured_s) == \
        ("CT_PRESSURED", "CT_PRESSURED", pytest.approx(2.0))


@pytest.mark.parametrize("seed", [6, 7, 8])
def test_skipping_runs_equals_feeding_every_sample(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 20_000
    t = np.cumsum(rng.uniform(0.2, 1.5, n))
    level = np.repeat(rng.choice([0.3, 0.65, 0.75, 0.85, 0.95], n // 50), 50)
    ctr = np.clip(level + rng.normal(0, 0.04, n), 0, 1.2)
    nfd = np.where(rng.random(n) < 0.01, rng.exponential(3.0, n), 0.0)
    nfd[rng.random(n) < 0.005] = 0.7  # between the NFD exit and enter thresholds
    machine = RegimeMachine()
    full = []
    for i in range(n):
        machine.feed(RegimeInput(t=float(t[i]), ctr=float(ctr[i]), nfd_per_s=float(nfd[i])))
        full.append(machine.regime.level)
    fast = machine_levels(t, ctr, nfd)
    assert fast.tolist() == full
    assert set(full) == {0, 1, 2}  # every regime a timeline can reach was visited
    changes = np.flatnonzero(np.diff(full))
    assert changes.size > 100  # many transitions, each where a skipped run had to end


def test_a_watch_stream_gives_its_own_regimes(tmp_path: Path) -> None:
    events = [{"event": "target_up", "host": "gw", "t": T},
              *({"event": "transition", "host": "gw", "t": T + dt, "from_state": "x",
                 "to_state": to} for dt, to in ((10, "CT_TIGHTENING"), (20, "CT_PRESSURED"),
                                                (30, "CT_SAFE_CONTAIN"), (60, "CT_PRESSURED"),
                                                (80, "CT_HEALTHY")))]
    path = tmp_path / "watch.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    tl = load_timeline([path])
    df = pd.DataFrame({"order_id": [7, 8], "host": "gw", "start": [T + 25, T + 100],
                       "end": [T + 65, T + 110], "is_bps": 0.0, "spread_bps": 1.0,
                       "volatility": 1.0, "participation": 0.1})
    f = pressure_features(orders_from_frame(df, "log"), tl, Config()).set_index("order_id")
    assert (f.loc[7, "regime_start"], f.loc[7, "regime_end"]) == ("CT_PRESSURED", "CT_PRESSURED")
    assert f.loc[7, ["time_pressured_s", "time_safe_contain_s", "time_healthy_s"]].tolist() \
        == pytest.approx([10.0, 30.0, 0.0])
    assert f.loc[8, "regime_start"] == "CT_HEALTHY" and f.loc[8, "time_healthy_s"] == 10.0
    assert f[["ctr_max", "nfd_mean", "table_full_events"]].isna().all().all()  # no samples
    assert f.loc[7, "pressure_label"] == "high"


@pytest.mark.parametrize("name", ["features.parquet", "features.csv"])
def test_the_file_round_trips_through_pandas(tmp_path: Path, name: str) -> None:
    orders, tl = tiny()
    frame = pressure_features(orders, tl, Config())
    path = tmp_path / "deep" / name
    assert export.write_features(frame, path) == name.split(".")[1]
    back = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)
    assert list(back.columns) == list(COLUMNS)
    assert back["order_id"].tolist() == ["o1", "o2", "o3", "o4", "o5", "o6"]
    assert back["order_id"].is_unique and len(back) == len(orders)
    numeric = [c for c in COLUMNS if c not in ("order_id", "host", "pressure_label",
                                                "regime_start", "regime_end")]
    assert np.allclose(back[numeric].to_numpy(float), frame[numeric].to_numpy(float),
                       equal_nan=True)
    for col in ("pressure_label", "regime_start", "regime_end"):
        assert back[col].fillna("-").tolist() == frame[col].fillna("-").tolist()
    assert back["regime_end"].isna().sum() == 3  # o3 (ends past the samples), o4, o5
    assert not list(tmp_path.rglob("*.partial"))


def test_keys_must_be_present_and_unique() -> None:
    orders, _ = tiny()
    check_keys(orders)
    dup = OrderLog(orders.source, orders.hosts, orders.host, orders.start, orders.end,
                   orders.is_bps, orders.spread_bps, orders.volatility, orders.participation,
                   order_id=np.array(["o1", "o2", "o1", "o4", "o5", "o6"], dtype=object))
    with pytest.raises(InvalidInput, match="order_id 'o1' appears more than once"):
        check_keys(dup)


def test_parquet_without_pyarrow_is_one_line_saying_how_to_install(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(export, "has_pyarrow", lambda: False)
    assert export.features_format(tmp_path / "f.csv") == "csv"
    with pytest.raises(InvalidInput) as err:
        export.features_format(tmp_path / "f.parquet")
    line = err.value.one_line()
    assert "pip install pyarrow" in line and "\n" not in line
