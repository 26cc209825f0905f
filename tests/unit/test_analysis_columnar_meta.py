"""A Parquet timeline's footer gives the columnar engine what the checking scan gave
(rows per host, time range and unit, clustering) without reading every value; what the
footer cannot vouch for (NaN/inf in float columns) is checked as hosts are read, with
the scan's own error; unusual files go to the scan."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctdrill.analysis import columnar_source as src
from ctdrill.analysis.columnar import ColumnarTimeline
from ctdrill.analysis.columnar_meta import footer_stats
from ctdrill.analysis.loaders import orders_from_frame
from ctdrill.analysis.synth import SynthData, SynthSpec, generate
from ctdrill.errors import InvalidInput

T0 = 1_714_521_600.0


@pytest.fixture(scope="module")
def desk() -> SynthData:
    return generate(SynthSpec(orders=2_000, hosts=4, span_s=86_400, seed=7))


def _both(path: Path) -> tuple[src.FileStats | None, src.FileStats]:
    con = duckdb.connect(":memory:")
    cols = src.resolve(con, path)
    return footer_stats(con, path, cols), src.scan(con, path, cols)


@pytest.mark.parametrize(("group", "unit"), [(None, 1.0), (20_000, 1.0), (7_777, 1e3)])
def test_footer_gives_the_scans_findings(tmp_path: Path, desk: SynthData,
                                         group: int | None, unit: float) -> None:
    """One row group, host-sized ones, and groups straddling hosts (counted) with
    times in ms."""
    tl = tmp_path / "tl.parquet"
    frame = desk.timeline.astype({"host": str}).assign(t=desk.timeline["t"] * unit)
    frame.to_parquet(tl, row_group_size=group)
    meta, scan = _both(tl)
    assert meta is not None
    assert (meta.rows, meta.scale, meta.t_min, meta.t_max, meta.clustered) == \
        (scan.rows, scan.scale, scan.t_min, scan.t_max, scan.clustered)
    assert meta.check == ("t",) and scan.check == ()  # int counters need no check
    assert len(meta.rows) == 4 and sum(meta.rows.values()) == len(frame)


def _small(**over: object) -> pd.DataFrame:
    frame = pd.DataFrame({"t": T0 + np.arange(6.0), "host": ["a"] * 3 + ["b"] * 3,
                          "ctr": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "nfd_per_s": [0.0] * 6})
    return frame.assign(**over)


@pytest.mark.parametrize("case", ["null", "negative time", "timestamp", "long name",
                                  "float count"])
def test_unusual_files_go_to_the_scan(tmp_path: Path, case: str) -> None:
    frame = {
        "null": _small(ctr=[0.1, None, 0.3, 0.4, 0.5, 0.6]),
        "negative time": _small(t=np.arange(6.0) - 3),
        "timestamp": _small(t=pd.to_datetime(T0 + np.arange(6.0), unit="s")),
        "long name": _small(host=["x" * 40] * 6),
        "float count": _small().drop(columns="ctr").assign(count=1.0, max=2.0),
    }[case]
    tl = tmp_path / "tl.parquet"
    frame.to_parquet(tl)
    con = duckdb.connect(":memory:")
    assert footer_stats(con, tl, src.resolve(con, tl)) is None
    assert footer_stats(con, tmp_path / "x.csv", src.resolve(con, tl)) is None


def test_nan_in_a_read_host_is_the_scans_error(tmp_path: Path, desk: SynthData) -> None:
    tl = tmp_path / "tl.parquet"
    bad = _small(ctr=[0.1, 0.2, 0.3, 0.4, float("nan"), 0.6], host=["gw-00"] * 3 + ["gw-01"] * 3)
    pq.write_table(pa.table({c: bad[c].to_numpy() for c in bad}), tl)  # NaN, not null
    with ColumnarTimeline([tl]) as columnar:  # the footer has no word on NaN: opens
        assert columnar._stats[0].check == ("t", "ctr", "x")
        with pytest.raises(InvalidInput, match=r"column 'ctr' has 1 row\(s\) that are not "
                                               r"a number"):
            columnar.label(orders_from_frame(desk.orders, "orders"), 0.9, 0.7)
