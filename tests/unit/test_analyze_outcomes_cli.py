"""The real thing for issue 15's analyze additions: `ctdrill analyze` run as a separate
process on a synthetic desk written to disk (CSV and Parquet) with --features and
--json. The JSON's outcome estimates must cover the generator's true effects, the
features file must hold one row per order keyed by the log's ids with the pressure the
generator put there, and the CSV and Parquet inputs must give the same numbers. The
analysis is pure over files: no root, no network, so it lives in tests/unit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ctdrill.analysis.synth import SynthData, SynthSpec, generate
from ctdrill.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]
TIMES = ["time_healthy_s", "time_tightening_s", "time_pressured_s", "time_safe_contain_s"]


@pytest.fixture(scope="module")
def desk() -> SynthData:
    return generate(SynthSpec(orders=16_000, hosts=4, span_s=12 * 3600, seed=21,
                              confound=1.0))


def ctdrill(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ctdrill", "analyze", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)


def write(desk: SynthData, d: Path, fmt: str, orders: pd.DataFrame | None = None) -> list[str]:
    d.mkdir(parents=True, exist_ok=True)
    log, tl = d / f"orders.{fmt}", d / f"timeline.{fmt}"
    for frame, path in ((desk.orders if orders is None else orders, log), (desk.timeline, tl)):
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
    return [str(log), "-t", str(tl), "--out", str(d / "out")]


@pytest.fixture(scope="module")
def runs(desk: SynthData, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both formats, each with its features file in the other format (CSV in, Parquet out
    and the reverse)."""
    out: dict[str, Any] = {}
    for fmt, feat in (("csv", "parquet"), ("parquet", "csv")):
        d = tmp_path_factory.mktemp(fmt)
        proc = ctdrill(*write(desk, d, fmt), "--features", str(d / f"f.{feat}"), "--json")
        assert proc.returncode == 0, proc.stderr
        features = pd.read_parquet(d / "f.parquet") if feat == "parquet" \
            else pd.read_csv(d / "f.csv")
        out[fmt] = (json.loads(proc.stdout), features, d)
    return out


def test_outcome_estimates_cover_the_true_effects(desk: SynthData,
                                                  runs: dict[str, Any]) -> None:
    doc = runs["csv"][0]
    oc = doc["outcomes"]
    assert oc["skipped"] == {} and oc["window_s"] == 60.0
    assert oc["orders"]["during"] == int(desk.exposed.sum()) == doc["labels"]["high"]
    seen = set()
    for row in oc["results"]:
        key = row["name"] if row["comparison"] == "high vs low" else \
            f"cancel_replace_{row['comparison'].split()[0]}"
        seen.add(key)
        assert row["lo"] <= desk.truth[key] <= row["hi"], (key, row, desk.truth[key])
        assert row["ci_excludes_zero"], key
    assert seen == {"passive_fill_ratio", "cancel_replace_before", "cancel_replace_during",
                    "cancel_replace_after", "markout_1s_bps", "markout_10s_bps"}
    fill = next(r for r in oc["results"] if r["name"] == "passive_fill_ratio")
    assert fill["naive"] < fill["lo"]  # confounded: the naive gap overstates the drop
    assert doc["features"]["rows"] == len(desk.orders) and doc["features"]["format"] == "parquet"


def test_the_features_file_holds_the_pressure_each_order_met(desk: SynthData,
                                                             runs: dict[str, Any]) -> None:
    doc, f, _ = runs["csv"]
    assert len(f) == len(desk.orders) and f["order_id"].is_unique
    assert f["order_id"].tolist() == desk.orders["order_id"].tolist()
    high = (f["pressure_label"] == "high").to_numpy()
    assert (high == desk.exposed).all()
    assert f["pressure_label"].value_counts().to_dict() == {
        k: v for k, v in doc["labels"].items() if v}
    # the generator: CTR >= 0.91 and drops inside an episode, CTR < 0.6 and none outside
    assert (f.loc[high, "table_full_events"] >= 1).all() and (f.loc[high, "nfd_max"] > 0).all()
    assert (f.loc[high, "ctr_max"] >= 0.91).all()
    assert (f.loc[~high, "ctr_max"] < 0.6).all() and (f.loc[~high, "nfd_max"] == 0).all()
    assert (f.loc[~high, "table_full_events"] == 0).all()
    life = (desk.orders["end"] - desk.orders["start"]).to_numpy()
    assert np.allclose(f[TIMES].sum(axis=1), life, atol=1e-5)  # all inside the timeline
    pressured_share = f.loc[high, "time_pressured_s"].sum() / life[high].sum()
    healthy_share = f.loc[~high, "time_healthy_s"].sum() / life[~high].sum()
    assert pressured_share > 0.5 and healthy_share > 0.7
    assert (f["time_safe_contain_s"] == 0).all()  # needs a CDT breach: never from samples


def test_csv_and_parquet_inputs_give_the_same_numbers(runs: dict[str, Any]) -> None:
    (a, fa, _), (b, fb, _) = runs["csv"], runs["parquet"]
    assert a["outcomes"]["results"] == b["outcomes"]["results"]
    assert a["matched"] == b["matched"]
    numeric = fa.columns.drop(["order_id", "host", "pressure_label", "regime_start",
                               "regime_end"])
    assert np.allclose(fa[numeric].to_numpy(float), fb[numeric].to_numpy(float),
                       equal_nan=True)
    assert (fa["regime_start"].fillna("-") == fb["regime_start"].fillna("-")).all()


def test_reports_show_the_new_sections(runs: dict[str, Any]) -> None:
    d = runs["csv"][2]
    html = (d / "out" / "analysis.html").read_text()
    md = (d / "out" / "analysis.md").read_text()
    for text in (html, md):
        assert "Execution outcomes under pressure" in text and "pressure features" in text
    for unit in ("ratio", "per-min", "bps"):  # one forest plot per unit
        assert f'class="chart chart-outcomes-{unit}"' in html
    assert "<script" not in html


def test_a_log_without_outcome_columns_skips_them_and_says_which(
        desk: SynthData, tmp_path: Path) -> None:
    bare = desk.orders.drop(columns=["passive_fill_ratio", "cancels", "replaces",
                                     "markout_1s_bps", "markout_10s_bps"])
    proc = ctdrill(*write(desk, tmp_path, "csv", bare), "--features",
                   str(tmp_path / "f.csv"), "--json", "--reps", "50")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    oc = json.loads(proc.stdout)["outcomes"]
    assert oc["results"] == [] and set(oc["skipped"]) == {"passive_fill", "cancel_replace",
                                                          "markout"}
    assert "passive_fill_ratio" in oc["skipped"]["passive_fill"]
    assert len(pd.read_csv(tmp_path / "f.csv")) == len(bare)


def test_a_duplicate_order_id_is_one_line_and_writes_nothing(desk: SynthData,
                                                            tmp_path: Path) -> None:
    dup = desk.orders.copy()
    dup.loc[5, "order_id"] = dup.loc[4, "order_id"]
    proc = ctdrill(*write(desk, tmp_path, "csv", dup), "--features",
                   str(tmp_path / "f.parquet"))
    assert proc.returncode == ExitCode.INVALID_INPUT
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "order_id '4' appears more than once (row 6)" in proc.stderr
    assert not (tmp_path / "f.parquet").exists() and not (tmp_path / "out").exists()
