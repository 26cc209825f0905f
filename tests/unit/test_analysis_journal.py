"""`ctdrill analyze` with drill journals as the pressure timeline: one finished journal,
several, and journals mixed with a CSV export of the same hosts.

The journals are written the way a run writes them: the project's own Journal, telemetry
`Sample`s turned into windows by `window_metrics`, regime transitions from the real
machine, and the run's summary (`key_metrics`), verdict, revert and end records around
the sample batches. Only the `samples` records may be read as telemetry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ctdrill.analysis.loaders import load_timeline
from ctdrill.analysis.synth import SynthData, SynthSpec, generate
from ctdrill.cli.app import app
from ctdrill.engine.judge import key_metrics
from ctdrill.engine.observed import ObservationResult
from ctdrill.engine.verdict import Verdict
from ctdrill.errors import ExitCode, InvalidInput
from ctdrill.journal import Journal, read_journal
from ctdrill.metrics.conntrack import WindowMetrics, window_metrics
from ctdrill.regime.machine import RegimeInput, RegimeMachine
from ctdrill.spec.loader import load_spec
from ctdrill.telemetry.protocol import Sample

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def data() -> SynthData:
    return generate(SynthSpec(orders=3000, hosts=3, span_s=3600, seed=5))


def _entries(rows: Any, host: str, history: dict[str, list[WindowMetrics]],
             transitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One host's batch entries as lifecycle/observe.py builds them: the first sample of a
    stream has no window yet; every later one carries the window's metrics."""
    spec = load_spec(ROOT / "drills" / "rollback.yaml")
    machine = RegimeMachine(spec.regime.to_config())
    entries, prev = [], None
    for seq, (t, count, maximum, drops) in enumerate(rows):
        s = Sample(seq=seq, t=float(t), received=float(t) + 0.001, count=int(count),
                   max=int(maximum), buckets=int(maximum),
                   stat={"drop": int(drops), "early_drop": 0, "insert_failed": 0})
        entry: dict[str, Any] = {"sample": s.to_json()}
        if prev is not None:
            m = window_metrics(prev, s)
            entry["metrics"] = m.to_json()
            history.setdefault(host, []).append(m)
            tr = machine.feed(RegimeInput.from_window(m))
            if tr is not None:
                transitions.append({"host": host, **tr.to_json()})
        entries.append(entry)
        prev = s
    return entries


def write_journal(path: Path, frame: Any, batch: int = 60) -> Path:
    """A finished run's journal whose observation saw `frame` (t, host, count, max,
    drops): start, lock, snapshot, intent, sample batches interleaved by host (as the
    observer flushes them), transitions, the summary, a verdict, revert and end."""
    spec = load_spec(ROOT / "drills" / "rollback.yaml")
    hosts = sorted(str(h) for h in frame["host"].unique())
    j = Journal(path)
    j.write("start", run_id=path.parent.name, drill=spec.drill, spec_path="rollback.yaml",
            spec=spec.model_dump(mode="json"), inventory="/tmp/inventory.ini",
            pools={"targets": hosts, "canary": hosts, "control": []})
    j.write("locked", hosts=hosts)
    for host in hosts:
        j.write("snapshot", host=host, snapshot={"sysctl": {}, "nft": ""})
        j.write("intent", host=host, sysctl={"net.netfilter.nf_conntrack_udp_timeout": "10"},
                nft=None, ttl_s=120.0)
    j.write("applied_check", diffs={})
    j.write("load_start", offset_s=0.0)
    history: dict[str, list[WindowMetrics]] = {}
    transitions: list[dict[str, Any]] = []
    per_host = {h: _entries(frame[frame["host"] == h][["t", "count", "max", "drops"]]
                            .itertuples(index=False), h, history, transitions)
                for h in hosts}
    for i in range(0, max(len(e) for e in per_host.values()), batch):
        for host, entries in per_host.items():
            if entries[i:i + batch]:
                j.write("samples", host=host, samples=entries[i:i + batch])
    for tr in transitions:
        j.write("transition", **tr)
    j.write("load_end", result={"kind": "none"})
    obs = ObservationResult(started=float(frame["t"].min()), history=history)
    j.write("metrics", metrics=key_metrics(obs, spec))
    j.write("verdict", **Verdict("capacity reached the gateway", True, 65536.0, "ok").to_json())
    j.write("reverting", hosts=hosts)
    for host in hosts:
        j.write("revert", host=host, verified=True,
                restored={"net.netfilter.nf_conntrack_udp_timeout": ["10", "30"]}, deleted=[],
                problems=[], deadman={"armed": True})
    j.write("end", exit_code=0, reason=None, timings={"total": 3.0})
    j.close()
    return path


def _csv(frame: Any, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _arrays(tl: Any) -> tuple[Any, ...]:
    return tl.hosts, tl.offsets.tolist(), tl.t.tolist(), tl.ctr.tolist(), tl.nfd_per_s.tolist()


def test_a_finished_journal_is_read_by_its_sample_records_only(tmp_path: Path,
                                                                 data: SynthData) -> None:
    journal = write_journal(tmp_path / "run" / "journal.jsonl", data.timeline)
    kinds = {r["type"] for r in read_journal(journal)}
    assert {"start", "samples", "metrics", "verdict", "end"} <= kinds
    tl = load_timeline([journal])
    # the CSV of the same samples, less each stream's first sample (it opens no window)
    later = data.timeline[data.timeline.groupby("host", observed=True).cumcount() > 0]
    assert _arrays(tl) == _arrays(load_timeline([_csv(later, tmp_path / "later.csv")]))
    assert tl.nfd_per_s.max() > 0 and tl.ctr.max() >= 0.9


def test_journals_mixed_with_a_csv_of_the_same_hosts_join_into_one_timeline(
        tmp_path: Path, data: SynthData) -> None:
    tl = data.timeline
    cut = float(tl["t"].quantile(0.5))
    first, second = tl[tl["t"] < cut], tl[tl["t"] >= cut]
    # each journal's stream opens one sample early: its first window ends at `cut`
    opener = first.groupby("host", observed=True).tail(1)
    stream = pd.concat([opener, second]).sort_values(["host", "t"], kind="stable")
    hosts = sorted(str(h) for h in tl["host"].unique())
    journals = [write_journal(tmp_path / f"run{i}" / "journal.jsonl",
                              stream[stream["host"].astype(str) == h])
                for i, h in enumerate(hosts)]
    merged = load_timeline([_csv(first, tmp_path / "first.csv"), *journals])
    assert _arrays(merged) == _arrays(load_timeline([_csv(tl, tmp_path / "all.csv")]))
    assert merged.source.count("journal.jsonl") == len(hosts)


def test_cli_analyzes_orders_against_journals(tmp_path: Path, data: SynthData) -> None:
    log = _csv(data.orders, tmp_path / "orders.csv")
    hosts = sorted(str(h) for h in data.timeline["host"].unique())
    journals = [write_journal(tmp_path / f"run{i}" / "journal.jsonl",
                              data.timeline[data.timeline["host"].astype(str) == h])
                for i, h in enumerate(hosts)]
    args = ["analyze", str(log), "--out", str(tmp_path / "out"), "--json", "--reps", "20"]
    one = runner.invoke(app, [*args, "-t", str(journals[0])])
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["labels"]["high"] > 0
    # every run's journal through one quoted glob, as `-t 'runs/*/journal.jsonl'`
    every = runner.invoke(app, [*args, "-t", str(tmp_path / "run*" / "journal.jsonl")])
    assert every.exit_code == 0, every.output
    doc = json.loads(every.stdout)
    assert all(str(j) in doc["inputs"]["timeline"] for j in journals), doc["inputs"]
    labels = doc["labels"]
    csv_run = runner.invoke(app, [*args, "-t", str(_csv(data.timeline, tmp_path / "t.csv"))])
    assert csv_run.exit_code == 0, csv_run.output
    csv_labels = json.loads(csv_run.stdout)["labels"]
    assert labels["high"] > 0 and labels["low"] > 0
    # a journal lacks only each stream's opening sample: at most a few orders differ
    assert sum(abs(labels[k] - csv_labels[k]) for k in labels) <= 0.01 * len(data.orders)


def _refused_run(path: Path) -> Path:
    """A run refused before observing: a real journal with no sample record."""
    j = Journal(path)
    j.write("start", run_id=path.parent.name, drill="rollback", spec={},
            inventory="/tmp/inventory.ini", pools={"targets": [], "canary": [], "control": []})
    j.write("refused", reason="target gw is locked by another drill")
    j.write("end", exit_code=5, reason="refused", timings={"total": 0.1})
    j.close()
    return path


def test_a_journal_without_samples_is_skipped_among_several_and_refused_alone(
        tmp_path: Path, data: SynthData) -> None:
    log = _csv(data.orders, tmp_path / "orders.csv")
    refused = _refused_run(tmp_path / "refused" / "journal.jsonl")
    with pytest.raises(InvalidInput, match="no pressure samples"):
        load_timeline([refused])
    good = write_journal(tmp_path / "good" / "journal.jsonl", data.timeline)
    notes: list[tuple[Path, str]] = []
    tl = load_timeline([refused, good], skipped=lambda p, why: notes.append((p, why)))
    assert notes == [(refused, "a drill journal without samples")]
    assert np.array_equal(tl.t, load_timeline([good]).t)
    alone = runner.invoke(app, ["analyze", str(log), "-t", str(refused)])
    assert alone.exit_code == ExitCode.INVALID_INPUT
    assert len(alone.output.strip().splitlines()) == 1 and "Traceback" not in alone.output
    nothing = runner.invoke(app, ["analyze", str(log), "-t", str(tmp_path / "no*.jsonl")])
    assert nothing.exit_code == ExitCode.INVALID_INPUT and "matches no file" in nothing.output
    both = runner.invoke(app, ["analyze", str(log), "-t", str(refused), "-t", str(good),
                               "--out", str(tmp_path / "o"), "--json", "--reps", "20"])
    assert both.exit_code == 0, both.output
    assert f"note: {refused}: a drill journal without samples, skipped" in both.stderr
