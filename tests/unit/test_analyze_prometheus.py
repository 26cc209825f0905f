"""`analyze --prometheus` without a server: the loader replays real answers of Prometheus
2.42 (tests/unit/fixtures/prometheus_answers.json, see the fixtures README) and must
rebuild exactly the samples an export of the same series holds, chunked under the
server's point limit, with the gap and the counter resets reported; every bad answer is
one line with its exit code."""

from __future__ import annotations

import itertools
import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ctdrill.analysis import prometheus as prom
from ctdrill.analysis.data import Timeline
from ctdrill.analysis.loaders import load_timeline
from ctdrill.analysis.promapi import PromClient, decode, parse_duration
from ctdrill.analysis.prometheus import (
    CTDRILL,
    NODE,
    PromSource,
    by_host,
    chunks,
    coverage,
    load_prometheus,
    selector,
)
from ctdrill.analysis.promhosts import host_of, strip_port
from ctdrill.cli.app import app
from ctdrill.engine import coverage as engine_coverage
from ctdrill.errors import EnvironmentProblem, ExitCode, InvalidInput
from ctdrill.watch import exposition

FIXTURE = Path(__file__).parent / "fixtures" / "prometheus_answers.json"
REC: dict[str, Any] = json.loads(FIXTURE.read_text())
runner = CliRunner()


class Replay(PromClient):
    """A PromClient whose server is the recording: an unrecorded request fails the test."""

    def __init__(self, calls: list[dict[str, Any]] | None = None) -> None:
        super().__init__(REC["url"])
        self.answers = {(c["path"], json.dumps(c["form"], sort_keys=True)): c
                        for c in (REC["calls"] if calls is None else calls)}

    def _call(self, path: str, form: dict[str, str] | None, what: str) -> Any:
        self.requests += 1
        answer = self.answers.get((path, json.dumps(form, sort_keys=True)))
        if answer is None:
            pytest.fail(f"not recorded: {path} {form}")
        return decode(answer["status"], json.dumps(answer["body"]).encode(), self.url, what)


def recorded_source() -> PromSource:
    return PromSource(REC["url"], max_points=REC["max_points"])


def load_recorded() -> prom.PromTimeline:
    return load_prometheus(recorded_source(), REC["lo"], REC["hi"], REC["margin_s"], Replay())


def export_csvs(tmp_path: Path, window: list[float]) -> list[Path]:
    """The same series' raw samples (an instant range query) as the CSVs a user exports:
    node_exporter's names for gw-a, ctdrill's ratio and drop counter for gw-b."""
    paths = []
    for family in (NODE, CTDRILL):
        frame: pd.DataFrame | None = None
        for column, metric in family.columns:
            (series,) = REC["export"][metric]
            host = series["metric"].get("host") or series["metric"]["instance"].split(":")[0]
            name = metric if family is NODE else column  # node_exporter's names are aliases
            rows = pd.DataFrame({"t": [float(t) for t, _ in series["values"]],
                                 "host": host, name: [float(v) for _, v in series["values"]]})
            frame = rows if frame is None else frame.merge(rows, on=["t", "host"])
        assert frame is not None
        frame = frame[(frame["t"] >= window[0]) & (frame["t"] <= window[1])]
        path = tmp_path / f"{family.name}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def assert_same_timeline(a: Timeline, b: Timeline) -> None:
    assert a.hosts == b.hosts
    for name in ("offsets", "t", "ctr", "nfd_per_s"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_the_recording_holds_a_gap_and_a_reset() -> None:
    """The fixture exercises what the loader must report (else the tests below could
    pass on a quiet recording)."""
    (node,) = REC["export"]["node_nf_conntrack_entries"]
    t = np.array([float(x) for x, _ in node["values"]])
    assert np.diff(t).max() > 5
    (watch,) = REC["export"]["ctdrill_conntrack_new_flow_drops_total"]
    drops = np.array([float(v) for _, v in watch["values"]])
    assert (np.diff(drops) < 0).sum() >= 1 and (np.diff(drops) > 0).sum() >= 5


def test_loader_rebuilds_exactly_the_exported_samples(tmp_path: Path) -> None:
    read = load_recorded()
    csv = load_timeline(export_csvs(tmp_path, read.report["window"]))
    assert_same_timeline(read.timeline, csv)
    assert read.timeline.hosts == ("gw-a", "gw-b")


def test_every_query_stays_under_the_point_limit_and_the_grid_is_asked_once() -> None:
    read = load_recorded()
    start, end = read.report["window"]
    forms = [c["form"] for c in REC["calls"] if c["path"] == "/api/v1/query_range"
             and c["form"]["query"] == prom.paired_query("node_nf_conntrack_entries")]
    spans = [(float(f["start"]), float(f["end"])) for f in forms]
    step = read.report["step_s"]
    assert len(spans) == read.report["chunks"] > 1
    assert all((b - a) / step + 1 <= REC["max_points"] for a, b in spans)
    assert spans[0][0] == start and spans[-1][1] >= end
    assert all(b2 - step == pytest.approx(a1) or a2 == pytest.approx(b1 + step)
               for (a1, b1), (a2, b2) in itertools.pairwise(spans))


@pytest.mark.parametrize(("start", "end", "step", "most"), [
    (0.0, 0.0, 1.0, 5), (0.0, 10.0, 1.0, 11), (0.0, 10.0, 1.0, 4), (3.5, 100.2, 0.7, 13),
    (1e9, 1e9 + 86400, 15.0, 10_000), (0.0, 1.0, 2.0, 1)])
def test_chunks_cover_the_grid_once_within_the_limit(start: float, end: float, step: float,
                                                      most: int) -> None:
    parts = chunks(start, end, step, most)
    grid = [round(a + k * step, 6) for a, b in parts
            for k in range(round((b - a) / step) + 1)]
    assert all(round((b - a) / step) + 1 <= most for a, b in parts)
    assert len(grid) == len(set(grid))
    assert grid[0] == round(start, 6) and grid[-1] >= end - 1e-6
    assert np.allclose(np.diff(grid), step)


def test_gap_and_counter_resets_are_reported_and_resets_count_as_no_drops() -> None:
    read = load_recorded()
    gw_a, gw_b = read.report["hosts"]["gw-a"], read.report["hosts"]["gw-b"]
    assert gw_a["metrics"] == "node_exporter" and gw_b["metrics"] == "ctdrill"
    assert gw_a["gaps"] >= 1 and gw_a["largest_gap_s"] > 5 and gw_a["coverage"] < 1
    for rep, metric in ((gw_a, NODE.metrics[0]), (gw_b, CTDRILL.metrics[0])):
        (series,) = REC["export"][metric]  # the raw samples: 1 s scrapes, a gap is > 1.5 s
        t = np.array([float(x) for x, _ in series["values"]])
        t = t[(t >= read.report["window"][0]) & (t <= read.report["window"][1])]
        assert rep["gaps"] == (np.diff(t) > 1.5).sum()
        assert rep["largest_gap_s"] == pytest.approx(np.diff(t).max())
    assert gw_b["counter_resets"] == 2
    assert any(n.startswith("gw-a:") and "gap" in n for n in read.notes)
    assert any(n.startswith("gw-b:") and "counter reset" in n for n in read.notes)
    tl = read.timeline
    lo, hi = tl.offsets[1], tl.offsets[2]
    at_reset = np.isin(tl.t[lo:hi], gw_b["reset_times"])
    assert at_reset.sum() == 2
    assert (tl.nfd_per_s[lo:hi][at_reset] == 0).all()
    assert (tl.nfd_per_s[lo:hi] > 0).any()


def test_coverage_is_the_engines_definition() -> None:
    ts = np.array([0.0, 1.0, 2.0, 9.0, 9.5, 20.0])
    for lo, hi, gap in ((0.0, 20.0, 1.5), (-5.0, 25.0, 1.0), (3.0, 8.0, 2.0), (1.0, 1.0, 1.0)):
        assert coverage(ts, lo, hi, gap) == pytest.approx(
            engine_coverage.coverage(ts.tolist(), lo, hi, gap))


def test_metric_names_are_what_ctdrill_watch_exposes() -> None:
    gauges = {name for name, _, _ in exposition.GAUGES}
    assert "ctdrill_conntrack_table_ratio" in gauges
    page = exposition.render({})
    assert "# TYPE ctdrill_conntrack_new_flow_drops_total counter" in page
    assert exposition.HOST == ["host"]


def test_hosts_come_from_host_else_instance_without_its_port() -> None:
    assert strip_port("gw-1:9100") == "gw-1"
    assert strip_port("[2001:db8::1]:9100") == "2001:db8::1"
    assert strip_port("gw-1") == "gw-1"
    assert host_of({"host": "gw", "instance": "x:1"}, None, "m") == "gw"
    assert host_of({"instance": "gw-2:9100"}, None, "m") == "gw-2"
    assert host_of({"node": "n1", "instance": "x:1"}, "node", "m") == "n1"
    with pytest.raises(InvalidInput) as exc:
        host_of({"instance": "x:1"}, "node", "m")
    assert "has no node label" in exc.value.one_line()
    assert "--prometheus-host-label" in exc.value.one_line()


def test_two_series_of_one_metric_on_one_host_are_refused() -> None:
    one = (np.array([1.0]), np.array([2.0]))
    fetched: dict[str, prom.SeriesSamples] = {"node_nf_conntrack_entries": {
        (("instance", "gw:9100"), ("job", "a")): one,
        (("instance", "gw:9100"), ("job", "b")): one}}
    with pytest.raises(InvalidInput, match="gw has more than one node_nf_conntrack_entries"):
        by_host(fetched, None)


def test_selector_takes_the_match_with_or_without_braces() -> None:
    assert selector("m", None) == "m"
    assert selector("m", 'job="n"') == selector("m", '{job="n"}') == 'm{job="n"}'


class EmptyReplay(Replay):
    """The recorded server, holding no series that match."""

    def _call(self, path: str, form: dict[str, str] | None, what: str) -> Any:
        if path == "/api/v1/query":  # the match checked on its own
            return {"resultType": "vector", "result": []}
        if path != "/api/v1/query_range":
            return super()._call(path, form, what)
        self.requests += 1
        return {"resultType": "matrix", "result": []}


def test_empty_selection_names_the_metrics_and_the_match() -> None:
    src = PromSource(REC["url"], match='instance="nope"', max_points=REC["max_points"])
    with pytest.raises(InvalidInput) as exc:
        load_prometheus(src, REC["lo"], REC["hi"], REC["margin_s"], EmptyReplay())
    text = exc.value.one_line()
    assert 'matching {instance="nope"}' in text
    assert all(m in text for m in (*NODE.metrics, *CTDRILL.metrics))


def test_server_errors_are_one_line_with_the_servers_message() -> None:
    status, body = REC["errors"]["bad_match"]
    with pytest.raises(InvalidInput, match="parse error: unterminated quoted string"):
        decode(status, body.encode(), "http://p", "the query q")
    status, body = REC["errors"]["too_many_points"]
    with pytest.raises(InvalidInput, match="11,000 points"):
        decode(status, body.encode(), "http://p", "the query q")
    status, body = REC["errors"]["node_exporter_page"]
    with pytest.raises(InvalidInput, match=r"did not answer .* like Prometheus"):
        decode(status, body.encode(), "http://p", "the query q")
    with pytest.raises(EnvironmentProblem, match="HTTP 503"):
        decode(503, b"upstream down", "http://p", "the query q")
    with pytest.raises(EnvironmentProblem, match="unavailable"):
        decode(503, b'{"status":"error","errorType":"unavailable","error":"x"}', "http://p",
               "the query q")


def test_unreachable_server_is_an_environment_problem() -> None:
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EnvironmentProblem, match="cannot reach Prometheus"):
        PromClient(f"http://127.0.0.1:{port}", timeout_s=5).scrape_interval()


def test_prometheus_durations() -> None:
    assert parse_duration("15s") == 15 and parse_duration("1m30s") == 90
    assert parse_duration("500ms") == 0.5 and parse_duration("2h") == 7200
    assert parse_duration("15") is None and parse_duration("") is None


# ------------------------------------------------------------------ the command


def order_log(path: Path) -> Path:
    """Two orders a second on each host over the recording's span, covariates drawn at
    random: enough high and low orders on gw-b for the whole analysis to run."""
    rng = np.random.default_rng(3)
    start = np.arange(REC["lo"], REC["hi"] - 2, 0.5)
    rows = []
    for host in ("gw-a", "gw-b"):
        n = start.size
        end = start + rng.uniform(0.1, 1.5, n)
        end[-1] = REC["hi"]  # the log spans the recording's [lo, hi] exactly
        rows.append(pd.DataFrame({
            "order_id": [f"{host}-{i}" for i in range(n)], "host": host, "start": start,
            "end": end, "is_bps": rng.normal(2, 1, n),
            "spread_bps": rng.uniform(1, 3, n), "volatility": rng.uniform(0.5, 1.5, n),
            "participation": rng.uniform(0.01, 0.1, n)}))
    pd.concat(rows).to_csv(path, index=False)
    return path


ESTIMATE_ARGS = ["--reps", "50", "--block", "10", "--caliper", "3", "--json",
                 "--episode-window", str(REC["margin_s"])]  # the recorded margin


def test_cli_json_from_prometheus_equals_the_csv_export(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prom, "PromClient", lambda url, timeout_s: Replay())
    monkeypatch.setattr(prom, "MAX_POINTS", REC["max_points"])  # as recorded
    log = order_log(tmp_path / "orders.csv")
    res = runner.invoke(app, ["analyze", str(log), "--prometheus", REC["url"], "--out",
                              str(tmp_path / "p"), *ESTIMATE_ARGS])
    assert res.exit_code == 0, res.output
    from_prom = json.loads(res.stdout)
    assert "counter reset" in res.stderr and "gap" in res.stderr
    found = from_prom["inputs"]["prometheus"]
    assert set(found["hosts"]) == {"gw-a", "gw-b"} and found["step_s"] == 0.5  # 1 s scrapes
    csvs = export_csvs(tmp_path, found["window"])
    res = runner.invoke(app, ["analyze", str(log), "-t", str(csvs[0]), "-t", str(csvs[1]),
                              "--out", str(tmp_path / "c"), *ESTIMATE_ARGS])
    assert res.exit_code == 0, res.output
    from_csv = json.loads(res.stdout)
    assert from_prom["labels"]["high"] > 0 and from_prom["labels"]["low"] > 0
    for doc in (from_prom, from_csv):
        doc.pop("inputs"), doc.pop("timings_s", None)
    assert from_prom == from_csv


@pytest.mark.parametrize(("args", "needle"), [
    ([], "pass --timeline files or --prometheus URL"),
    (["-t", "x.csv", "--prometheus", "http://p:9090"], "do not go together"),
    (["--prometheus", "ftp://p"], "is not an http(s) URL"),
    (["--prometheus", "http://p:9090", "--prometheus-step", "0"], "--prometheus-step"),
    (["--prometheus", "http://p:9090", "--prometheus-metrics", "snmp"], "not a family"),
])
def test_cli_bad_prometheus_arguments_are_one_line(tmp_path: Path, args: list[str],
                                                   needle: str) -> None:
    log = order_log(tmp_path / "orders.csv")
    res = runner.invoke(app, ["analyze", str(log), *args])
    assert res.exit_code == ExitCode.INVALID_INPUT, res.output
    assert len(res.output.strip().splitlines()) == 1 and needle in res.output, res.output
