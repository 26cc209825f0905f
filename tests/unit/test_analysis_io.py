"""`ctdrill analyze` at the edge: every input format it reads, one clear error (exit 2,
one line, no traceback) for each bad input, and the three reports it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ctdrill.analysis.loaders import load_orders, load_timeline
from ctdrill.analysis.synth import SynthData, SynthSpec, generate
from ctdrill.cli.app import app
from ctdrill.errors import ExitCode, InvalidInput

runner = CliRunner()


@pytest.fixture(scope="module")
def data() -> SynthData:
    return generate(SynthSpec(orders=8_000, hosts=4, span_s=6 * 3600, seed=2))


@pytest.fixture()
def files(tmp_path: Path, data: SynthData) -> tuple[Path, Path]:
    log, tl = tmp_path / "log.csv", tmp_path / "timeline.csv"
    data.orders.to_csv(log, index=False)
    data.timeline.to_csv(tl, index=False)
    return log, tl


def one_line_error(args: list[str], *needles: str) -> str:
    result = runner.invoke(app, ["analyze", *args])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    for needle in needles:
        assert needle in result.output, result.output
    return result.output


def test_cli_writes_json_markdown_and_self_contained_html(
        tmp_path: Path, files: tuple[Path, Path]) -> None:
    log, tl = files
    out = tmp_path / "out"
    result = runner.invoke(app, ["analyze", str(log), "--timeline", str(tl), "--out",
                                 str(out), "--reps", "50"])
    assert result.exit_code == 0, result.output
    assert "CDT p95" in result.output and "Decomposition" in result.output
    doc = json.loads((out / "analysis.json").read_text())
    assert doc["matched"]["cdt_p95"]["value"] is not None
    assert {p["name"] for p in doc["decomposition"]} >= {"drop_gap_bps", "conntrack_bps"}
    html = (out / "analysis.html").read_text()
    assert html.count("<svg") >= 4 and "<script" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    assert (out / "analysis.md").read_text().startswith("# CDT analysis")


def test_cli_json_output_and_canary(tmp_path: Path, data: SynthData,
                                    files: tuple[Path, Path]) -> None:
    log, tl = files
    change = pd.Timestamp(data.change_at, unit="s", tz="UTC").isoformat()
    result = runner.invoke(app, ["analyze", str(log), "-t", str(tl), "--out",
                                 str(tmp_path / "o"), "--json", "--reps", "50",
                                 "--canary", "gw-00,gw-01", "--change-at", change])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["canary"]["canary_hosts"] == ["gw-00", "gw-01"]
    assert doc["canary"]["verdict_metric"] == "cdt_p95"


def test_parquet_log_iso_times_and_node_exporter_names(tmp_path: Path,
                                                        data: SynthData) -> None:
    log = data.orders.copy()
    log["start"] = pd.to_datetime(log["start"], unit="s", utc=True).dt.strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    log["end"] = (log["end"] * 1000).round()  # epoch milliseconds
    log.to_parquet(tmp_path / "log.parquet")
    orders = load_orders(tmp_path / "log.parquet")
    assert np.allclose(orders.start, data.orders["start"], atol=1e-3)
    assert np.allclose(orders.end, data.orders["end"], atol=1e-3)
    tl = data.timeline.rename(columns={"t": "timestamp", "host": "instance",
                                       "count": "node_nf_conntrack_entries",
                                       "max": "node_nf_conntrack_entries_limit",
                                       "drops": "node_nf_conntrack_stat_drop"})
    tl.head(20_000).to_csv(tmp_path / "ne.csv", index=False)
    timeline = load_timeline([tmp_path / "ne.csv"])
    assert timeline.hosts == ("gw-00",) and timeline.ctr.max() <= 1.0


def test_drill_journal_observe_lines_and_watch_transitions(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    recs = [{"type": "start", "t": 0}]
    for host in ("gw", "venue"):
        recs.append({"type": "samples", "host": host, "samples": [
            {"sample": {"t": 10.0}},  # the first sample has no window yet
            {"sample": {"t": 11.0}, "metrics": {"t": 11.0, "ctr": 0.95, "nfd_per_s": 4.0,
                                                "count": 95, "max": 100, "drops": 4}},
            {"sample": {"t": 12.0}, "metrics": {"t": 12.0, "ctr": 0.2, "nfd_per_s": 0.0,
                                                "count": 20, "max": 100, "drops": 0}}]})
    journal.write_text("\n".join(json.dumps(r) for r in recs) + "\n{\"torn")
    tl = load_timeline([journal])
    assert tl.hosts == ("gw", "venue") and tl.ctr.tolist() == [0.95, 0.2, 0.95, 0.2]
    assert tl.nfd_per_s.tolist() == [4.0, 0.0, 4.0, 0.0]

    observe = tmp_path / "observe.jsonl"
    observe.write_text(json.dumps({"target": "gw", "sample": {}, "metrics": None}) + "\n"
                       + json.dumps({"target": "gw", "sample": {},
                                     "metrics": {"t": 5.0, "ctr": 0.5, "nfd_per_s": 0}}))
    assert load_timeline([observe]).t.tolist() == [5.0]

    watch = tmp_path / "watch.jsonl"
    watch.write_text("\n".join(json.dumps(e) for e in [
        {"event": "target_up", "host": "gw", "t": 100.0},
        {"event": "transition", "host": "gw", "t": 160.0, "from_state": "CT_HEALTHY",
         "to_state": "CT_PRESSURED"},
        {"event": "transition", "host": "gw", "t": 190.0, "from_state": "CT_PRESSURED",
         "to_state": "CT_HEALTHY"}]))
    wt = load_timeline([watch])
    assert wt.step and wt.t.tolist() == [100.0, 160.0, 190.0]
    assert wt.nfd_per_s.tolist() == [0.0, 1.0, 0.0]


def test_missing_columns_name_the_file_and_columns(tmp_path: Path,
                                                  files: tuple[Path, Path],
                                                  data: SynthData) -> None:
    _, tl = files
    bad = tmp_path / "bad.csv"
    data.orders.drop(columns=["volatility", "participation"]).to_csv(bad, index=False)
    one_line_error([str(bad), "-t", str(tl)], str(bad),
                   "missing columns volatility, participation")
    bad_tl = tmp_path / "bad_tl.csv"
    data.timeline.head(100).drop(columns=["drops"]).to_csv(bad_tl, index=False)
    one_line_error([str(files[0]), "-t", str(bad_tl)], str(bad_tl), "drops (or nfd_per_s)")


def test_unparseable_times_name_the_row(tmp_path: Path, files: tuple[Path, Path],
                                        data: SynthData) -> None:
    _, tl = files
    log = data.orders.head(100).copy()
    log["start"] = pd.to_datetime(log["start"], unit="s", utc=True).astype(str)
    log.loc[7, "start"] = "yesterday at noon"
    bad = tmp_path / "times.csv"
    log.to_csv(bad, index=False)
    one_line_error([str(bad), "-t", str(tl)], "column 'start' row 8",
                   "'yesterday at noon'", "ISO 8601")


def test_empty_overlap_in_hosts_and_in_time(tmp_path: Path, files: tuple[Path, Path],
                                            data: SynthData) -> None:
    log, _ = files
    other = data.timeline.head(1000).copy()
    other["host"] = "elsewhere"
    other_hosts = tmp_path / "hosts.csv"
    other.to_csv(other_hosts, index=False)
    one_line_error([str(log), "-t", str(other_hosts)], "no host of", "elsewhere")
    later = data.timeline.head(1000).copy()
    later["t"] = later["t"] + 30 * 86_400
    later_file = tmp_path / "later.csv"
    later.to_csv(later_file, index=False)
    one_line_error([str(log), "-t", str(later_file)], "overlaps timeline",
                   "same period")


def test_other_bad_inputs(tmp_path: Path, files: tuple[Path, Path]) -> None:
    log, tl = files
    one_line_error([str(tmp_path / "absent.csv"), "-t", str(tl)], "does not exist")
    one_line_error([str(log), "-t", str(tl), "--canary", "gw-00"], "go together")
    one_line_error([str(log), "-t", str(tl), "--canary", "nope*", "--change-at",
                    "1714530000"], "matches no host")
    one_line_error([str(log), "-t", str(tl), "--canary", "gw-0*", "--change-at",
                    "1714530000"], "no control pool")
    one_line_error([str(log), "-t", str(tl), "--canary", "gw-00", "--change-at",
                    "2020-01-01T00:00:00Z"], "no orders before")
    one_line_error([str(log), "-t", str(tl), "--change-at", "soon", "--canary", "gw-00"],
                   "--change-at")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    one_line_error([str(garbage), "-t", str(tl)], "cannot read execution log")
    calm = tmp_path / "calm.csv"
    frame = pd.read_csv(tl)
    frame["count"] = 10
    frame["drops"] = 0
    frame.to_csv(calm, index=False)
    one_line_error([str(log), "-t", str(calm)], "no high-pressure order")


def test_time_column_errors_are_invalid_input(tmp_path: Path) -> None:
    bad = tmp_path / "empty_start.csv"
    bad.write_text("order_id,host,start,end,is_bps,spread_bps,volatility,participation\n"
                   "1,gw,,5,1,1,1,0.1\n")
    with pytest.raises(InvalidInput, match="row 1 is empty"):
        load_orders(bad)
