"""The columnar engine (DuckDB over the files) against the in-memory one: the same
labels, exposure and episode flags on irregular timelines, the same analysis (every
deterministic number and the seeded bootstrap's intervals) on a synthetic desk, the
same one-line errors, and DuckDB held to its memory limit with its spill files inside
the run's temporary directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from ctdrill import api
from ctdrill.analysis.columnar import ColumnarTimeline
from ctdrill.analysis.engine import choose, open_timeline
from ctdrill.analysis.labels import HIGH, LOW, MID, UNOBSERVED, episode_windows, label_orders
from ctdrill.analysis.loaders import load_orders, load_timeline
from ctdrill.analysis.pipeline import Config, analyze
from ctdrill.analysis.pressure import InMemory
from ctdrill.analysis.synth import SynthData, SynthSpec, generate
from ctdrill.errors import InvalidInput

T0 = 1_714_521_600.0


@pytest.fixture(scope="module")
def desk() -> SynthData:
    return generate(SynthSpec(orders=12_000, hosts=4, span_s=2 * 86_400, seed=5,
                              confound=1.0, canary_hosts=2))


def _without_timings(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "timings_s"}


@pytest.mark.parametrize("layout", ["parquet", "clustered", "csv"])
def test_the_whole_analysis_is_the_same_with_either_engine(
        tmp_path: Path, desk: SynthData, layout: str) -> None:
    """Parquet (partitioned by the engine), Parquet in host-sized row groups (read host
    by host from the file), CSV (partitioned)."""
    log = tmp_path / "orders.parquet"
    tl = tmp_path / ("timeline.csv" if layout == "csv" else "timeline.parquet")
    desk.orders.to_parquet(log)
    if layout == "csv":
        desk.timeline.to_csv(tl, index=False)
    else:
        frame = desk.timeline.astype({"host": str})
        frame.to_parquet(tl, row_group_size=20_000 if layout == "clustered" else None)
    orders = load_orders(log)
    cfg = Config(reps=50, canary="gw-0[0-1]", change_at=desk.change_at)
    old = analyze(orders, load_timeline([tl]), cfg)
    with ColumnarTimeline([tl], episode_window_s=cfg.episode_window_s) as columnar:
        assert columnar._stats[0].clustered == (layout == "clustered")
        new = analyze(orders, columnar, cfg)
    assert old.labels["high"] > 100 and old.outcomes is not None and old.canary is not None
    assert _without_timings(new.to_json()) == _without_timings(old.to_json())


def _edge_case_files(tmp_path: Path) -> tuple[Path, list[Path]]:
    """Jittered and duplicate times, a counter reset, a gap, a one-sample host, a host
    only in the log and one only in the timeline, mid-pressure samples, two files (one
    with the drop counter, one with rates) sharing a host."""
    rng = np.random.default_rng(11)
    rows = []
    for h, name in enumerate(("a", "b", "c")):
        t = T0 + np.cumsum(rng.uniform(0.2, 2.5, 400))
        t[50:53] = t[50]  # duplicate times
        t[200:] += 300.0 * (h == 0)  # an outage on host a
        drops = np.cumsum(rng.poisson(0.2, t.size)).astype(float)
        drops[300:] -= drops[300]  # counter reset
        count = rng.choice([0.5, 0.75, 0.95], t.size, p=[0.8, 0.15, 0.05]) * 1000
        rows.append(pd.DataFrame({"timestamp": t, "instance": name, "count": count,
                                  "max": 1000.0, "drops": drops}))
    rows.append(pd.DataFrame({"timestamp": [T0 + 100.0], "instance": ["solo"],
                              "count": [10.0], "max": [1000.0], "drops": [0.0]}))
    rows.append(pd.DataFrame({"timestamp": [T0 + 5.0], "instance": ["only-tl"],
                              "count": [990.0], "max": [1000.0], "drops": [3.0]}))
    first = pd.concat(rows).sample(frac=1.0, random_state=3)  # not sorted
    second = pd.DataFrame({"t": (T0 + np.arange(0, 900, 7.0)) * 1000.0,  # milliseconds
                           "host": "b", "ctr": rng.uniform(0.6, 0.95, 129),
                           "nfd_per_s": rng.choice([0.0, 2.0], 129, p=[0.9, 0.1])})
    p1, p2, p3 = tmp_path / "one.parquet", tmp_path / "two.csv", tmp_path / "three.csv"
    first.to_parquet(p1)
    second.to_csv(p2, index=False)
    iso = first[first["instance"] == "c"].assign(  # ISO 8601 text, to the microsecond
        timestamp=lambda f: pd.to_datetime(f["timestamp"].round(6), unit="s", utc=True)
        .dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    iso.to_csv(p3, index=False)
    n = 3000
    host = rng.choice(["a", "b", "c", "solo", "only-log"], n)
    start = T0 + rng.uniform(-50, 1200, n)
    end = start + rng.exponential(3.0, n) * (rng.random(n) < 0.9)
    log = pd.DataFrame({"order_id": np.arange(n), "host": host, "start": start, "end": end,
                        "is_bps": 1.0, "spread_bps": 1.0, "volatility": 1.0,
                        "participation": 0.1, "cancels": 1.0})
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    return path, [p1, p2, p3]


@pytest.mark.parametrize("which", [[0], [1], [0, 1], [2]])
def test_labels_and_episode_windows_equal_on_irregular_timelines(
        tmp_path: Path, which: list[int]) -> None:
    log, files = _edge_case_files(tmp_path)
    paths = [files[i] for i in which]
    orders = load_orders(log)
    tl = load_timeline(paths)
    old = label_orders(orders, tl, 0.9, 0.7)
    with ColumnarTimeline(paths, episode_window_s=30.0) as columnar:
        new = columnar.label(orders, 0.9, 0.7)
        assert (len(columnar), columnar.hosts, columnar.span()) == \
            (len(tl), tl.hosts, tl.span())
        for window in (30.0, 5.0):  # from label's sweep, and a fresh one
            got = columnar.episode_windows(orders, new, 0.9, window)
            want = episode_windows(orders, tl, old, 0.9, window)
            assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))
    assert np.array_equal(new.label, old.label)
    assert np.array_equal(new.exposure, old.exposure)
    assert new.shared_hosts == old.shared_hosts
    if which == [0]:  # the case is rich enough to matter
        assert {UNOBSERVED, LOW, HIGH, MID} <= set(old.label.tolist())


def test_bad_values_and_missing_columns_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("t,host,ctr,nfd_per_s\n1714521600,a,0.5,0\n1714521601,a,oops,0\n")
    with pytest.raises(InvalidInput, match=r"column 'ctr' has 1 row\(s\) that are not a "
                                           r"number"):
        ColumnarTimeline([bad])
    missing = tmp_path / "missing.parquet"
    pd.DataFrame({"t": [T0], "host": ["a"], "ctr": [0.5]}).to_parquet(missing)
    with pytest.raises(InvalidInput) as caught:
        ColumnarTimeline([missing])
    with pytest.raises(InvalidInput) as legacy:
        load_timeline([missing])
    assert str(caught.value) == str(legacy.value)
    empty = tmp_path / "empty.csv"
    empty.write_text("t,host,ctr,nfd_per_s\n")
    with pytest.raises(InvalidInput, match="no rows"):
        ColumnarTimeline([empty])
    with pytest.raises(InvalidInput, match="does not exist"):
        ColumnarTimeline([tmp_path / "nowhere.parquet"])


def test_duckdb_has_a_memory_limit_and_spills_inside_the_runs_temp_dir(
        tmp_path: Path, desk: SynthData) -> None:
    tl = tmp_path / "tl.parquet"
    desk.timeline.to_parquet(tl)
    root = tmp_path / "tmp"
    root.mkdir()
    with ColumnarTimeline([tl], memory_limit="300MB", temp_root=root) as columnar:
        con: duckdb.DuckDBPyConnection = columnar._con
        limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        spill = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
        assert limit.replace(" ", "") in ("286.1MiB", "300.0MB", "300MB"), limit
        assert Path(spill).is_relative_to(root)
        columnar.label(load_orders_frame(desk), 0.9, 0.7)
        assert list(root.iterdir())  # its partitions and spill live here
    assert not list(root.iterdir())  # and are gone after


def load_orders_frame(desk: SynthData) -> Any:
    from ctdrill.analysis.loaders import orders_from_frame

    return orders_from_frame(desk.orders, "orders")


def test_engine_choice(tmp_path: Path) -> None:
    small, journal = tmp_path / "tl.csv", tmp_path / "j.jsonl"
    small.write_text("t,host,ctr,nfd_per_s\n1,a,0.5,0\n")
    journal.write_text("{}\n")
    assert choose([small], "auto", False) == "pandas"  # small: the row-naming errors
    assert choose([small], "duckdb", False) == "duckdb"
    assert choose([journal], "auto", False) == "pandas"
    with pytest.raises(InvalidInput, match="CSV and Parquet timelines only"):
        choose([journal], "duckdb", False)
    with pytest.raises(InvalidInput, match="features need the timeline in memory"):
        choose([small], "duckdb", True)
    with pytest.raises(InvalidInput, match="not one of"):
        choose([small], "polars", False)


def test_free_text_times_go_to_the_in_memory_engine_under_auto(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tl = tmp_path / "tl.csv"
    tl.write_text("t,host,ctr,nfd_per_s\n2024-05-01T00:00:00 +00:00,a,0.5,0\n"
                  "2024-05-01T00:00:01 +00:00,a,0.5,0\n")  # text to DuckDB's reader
    with pytest.raises(InvalidInput, match="cannot read"), \
            open_timeline([tl], engine="duckdb"):
        pass
    monkeypatch.setattr("ctdrill.analysis.engine.AUTO_BYTES", 0)  # "large": duckdb first
    assert choose([tl], "auto", False) == "duckdb"
    with open_timeline([tl], engine="auto") as held:
        assert isinstance(held, InMemory) and len(held) == 2


def test_api_gives_the_same_report_with_either_engine(tmp_path: Path,
                                                      desk: SynthData) -> None:
    log, tl = tmp_path / "orders.parquet", tmp_path / "timeline.parquet"
    desk.orders.to_parquet(log)
    desk.timeline.to_parquet(tl)
    docs = {}
    for engine in ("pandas", "duckdb"):
        res = api.analyze(log, [tl], out_dir=tmp_path / engine,
                          options=api.AnalysisOptions(reps=30, engine=engine))
        docs[engine] = _without_timings(res.to_json())
    assert docs["pandas"] == docs["duckdb"]
    with pytest.raises(InvalidInput, match="not an engine"):
        api.analyze(log, [tl], options=api.AnalysisOptions(engine="spark"))


def test_in_memory_view_is_the_timeline(desk: SynthData) -> None:
    from ctdrill.analysis.loaders import timeline_from_frame

    tl = timeline_from_frame(desk.timeline, "tl")
    view = InMemory(tl)
    assert (view.source, view.hosts, len(view), view.span()) == \
        (tl.source, tl.hosts, len(tl), tl.span())
