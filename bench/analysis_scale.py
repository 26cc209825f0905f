"""Benchmark: `ctdrill analyze` at a fleet's scale, the in-memory engine (pandas/numpy)
and the columnar one (DuckDB, docs/ANALYSIS.md "Engines") side by side: wall time and
peak RSS of the whole process (DuckDB runs in it, as threads), each run in a fresh
child process that reports its own peak (VmHWM). Goals: 1M orders / 30M samples in
< 20 s; 10M orders / 300M samples (Parquet) in < 120 s with peak RSS < 6 GiB.

The data come from ctdrill.analysis.synth, generated in chunks of hosts (each chunk is
one synthetic desk of its own; the 10M timeline is written chunk by chunk with pyarrow,
never whole in memory); generating is not timed. Every run is the public API
(`ctdrill.api.analyze`: read, label, match, estimate, bootstrap, canary, outcomes,
reports).

    .venv/bin/python -m bench.analysis_scale [--dir /tmp/ctd-bench-scale] [--scales 1,10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import DOCS, machine
from ctdrill.analysis.synth import T0, SynthSpec, generate

CANARY = "gw-0[0-4]"
HOSTS_PER_CHUNK = 5
ORDERS_PER_CHUNK = 1_000_000


@dataclass(frozen=True)
class Desk:
    """One generated desk on disk."""

    orders: Path
    timeline: Path
    samples: int
    change_at: float
    truth: dict[str, float]
    canary: bool = True


def make_desk(root: Path, chunks: int, days: int) -> Desk:
    """`chunks` desks of 5 hosts and 1M orders each over `days`, renamed so hosts are
    gw-00.. across chunks; the canary (5 hosts) is the first chunk's."""
    root.mkdir(parents=True, exist_ok=True)
    meta = root / "desk.json"
    orders, timeline = root / "orders.parquet", root / "timeline.parquet"
    if meta.exists():
        m = json.loads(meta.read_text())
        return Desk(orders, timeline, m["samples"], m["change_at"], m["truth"], m["canary"])
    tl_writer: pq.ParquetWriter | None = None
    o_writer: pq.ParquetWriter | None = None
    samples, truth, change_at = 0, {}, 0.0
    for i in range(chunks):
        spec = SynthSpec(orders=ORDERS_PER_CHUNK, hosts=HOSTS_PER_CHUNK,
                         span_s=days * 86_400, seed=42 + i, confound=1.0,
                         canary_hosts=HOSTS_PER_CHUNK if i == 0 and chunks > 1 else 0,
                         canary_removes=1.0)
        data = generate(spec)
        names = {f"gw-{j:02d}": f"gw-{i * HOSTS_PER_CHUNK + j:02d}"
                 for j in range(HOSTS_PER_CHUNK)}
        tl = data.timeline.assign(host=data.timeline["host"].cat.rename_categories(names))
        od = data.orders.assign(host=data.orders["host"].map(names),
                                order_id=data.orders["order_id"] + i * ORDERS_PER_CHUNK)
        tl_table = pa.Table.from_pandas(tl, preserve_index=False)
        tl_table = tl_table.set_column(1, "host", tl_table["host"].cast(pa.string()))
        o_table = pa.Table.from_pandas(od, preserve_index=False)
        tl_writer = tl_writer or pq.ParquetWriter(timeline, tl_table.schema)
        o_writer = o_writer or pq.ParquetWriter(orders, o_table.schema)
        tl_writer.write_table(tl_table)
        o_writer.write_table(o_table)
        samples += len(tl)
        if i == 0:
            truth, change_at = data.truth, data.change_at
        del data, tl, od, tl_table, o_table
        print(f"chunk {i + 1}/{chunks} written", flush=True)
    assert tl_writer is not None and o_writer is not None
    tl_writer.close()
    o_writer.close()
    meta.write_text(json.dumps({"samples": samples, "change_at": change_at, "truth": truth,
                                "canary": chunks > 1}))
    return Desk(orders, timeline, samples, change_at, truth, chunks > 1)


@dataclass(frozen=True)
class Run:
    """One analysis in a fresh process: wall seconds, peak RSS, and its analysis.json."""

    engine: str
    wall_s: float
    rss_gib: float
    doc: dict[str, Any]


def child(log: str, timeline: str, engine: str, change_at: float | None, out: str) -> None:
    """What the measured process runs: the public API, as the CLI would call it."""
    from ctdrill import api

    api.analyze(log, [timeline], out_dir=out, options=api.AnalysisOptions(
        engine=engine, canary=None if change_at is None else CANARY,
        change_at=None if change_at is None else repr(change_at)))
    (Path(out) / PEAK).write_text(str(_own_peak_kib()))


PEAK = "peak_rss_kib"


def _own_peak_kib() -> int:
    """This process's peak RSS since its exec (VmHWM). wait4's ru_maxrss is not: the
    kernel folds in the peak of the memory image exec replaced, which for a vforked
    child is the parent's (this benchmark's, after generating a desk)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(desk: Desk, engine: str, out: Path) -> Run:
    """Run `child` in a new interpreter (imports included), wait4 it, and read the peak
    RSS it measured of itself (the whole process: DuckDB works in it, in threads)."""
    code = ("from bench.analysis_scale import child; "
            f"child({str(desk.orders)!r}, {str(desk.timeline)!r}, {engine!r}, "
            f"{desk.change_at if desk.canary else None!r}, {str(out)!r})")
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parent.parent)
    _, status, _ = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{engine} run failed with {proc.returncode}")
    doc = json.loads((out / "analysis.json").read_text())
    return Run(engine, wall, int((out / PEAK).read_text()) / 2**20, doc)


def same_estimates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Every number of the two analyses equal (timings aside)."""
    return {k: v for k, v in a.items() if k != "timings_s"} == \
        {k: v for k, v in b.items() if k != "timings_s"}


def _ci(e: dict[str, Any]) -> str:
    v, lo, hi = e.get("value"), e.get("lo"), e.get("hi")
    return f"{v:+.2f} [{lo:+.2f}, {hi:+.2f}]" if None not in (v, lo, hi) else "n/a"


def _stages(runs: list[tuple[str, Run]]) -> str:
    names = list(dict.fromkeys(k for _, r in runs for k in r.doc["timings_s"]))
    head = "| stage | " + " | ".join(n for n, _ in runs) + " |\n|---|" + "---|" * len(runs)
    rows = [f"| {k} | " + " | ".join(f"{r.doc['timings_s'].get(k, 0):.1f}" for _, r in runs)
            + " |" for k in names]
    return "\n".join([head, *rows])
def speed_desk(root: Path) -> Desk:
    """bench/analysis_speed.py's desk: 1M orders, 50 hosts, 7 days (30.24M samples)."""
    meta = root / "desk.json"
    orders, timeline = root / "orders.parquet", root / "timeline.parquet"
    if not meta.exists():
        root.mkdir(parents=True, exist_ok=True)
        data = generate(SynthSpec(orders=1_000_000, hosts=50, span_s=7 * 86_400, seed=42,
                                  confound=1.0, canary_hosts=5, canary_removes=1.0))
        data.orders.to_parquet(orders)
        data.timeline.to_parquet(timeline)
        meta.write_text(json.dumps({"samples": len(data.timeline), "canary": True,
                                    "change_at": data.change_at, "truth": data.truth}))
    m = json.loads(meta.read_text())
    return Desk(orders, timeline, m["samples"], m["change_at"], m["truth"], m["canary"])


MARK = "<!-- bench/analysis_scale.py writes from here -->"


def write_section(body: str) -> Path:
    """Replace this benchmark's section of docs/BENCH-analysis.md (after MARK)."""
    path = DOCS / "BENCH-analysis.md"
    text = path.read_text() if path.exists() else "# Benchmark: causal CDT analysis\n"
    head = text.split(MARK)[0].rstrip() + "\n\n"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    path.write_text(f"{head}{MARK}\n\n# Scale: the columnar engine\n\nLast run: {stamp} on "
                    f"{machine()}.\n\n{body}\n")
    return path


def _table(cases: list[tuple[str, Desk, list[Run]]]) -> str:
    rows = ["| desk | orders | samples | engine | wall (s) | peak RSS (GiB) | "
            "same numbers as pandas |", "|---|---|---|---|---|---|---|"]
    for name, desk, runs in cases:
        ref = next((r for r in runs if r.engine == "pandas"), None)
        for r in runs:
            same = "-" if ref is None or r is ref else \
                ("yes" if same_estimates(r.doc, ref.doc) else "**NO**")
            rows.append(f"| {name} | {r.doc['inputs']['orders']:,} | {desk.samples:,} | "
                        f"{r.engine} | {r.wall_s:.1f} | {r.rss_gib:.2f} | {same} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, default=Path("/tmp/ctd-bench-scale"))
    parser.add_argument("--no-page", action="store_true", help="print only")
    parser.add_argument("--skip-10m", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    cases: list[tuple[str, Desk, list[Run]]] = []
    both = ("pandas", "duckdb")
    plan: list[tuple[str, Desk, tuple[str, ...]]] = [
        ("1M speed", speed_desk(args.dir / "speed"), both),
        ("1M x 70 d", make_desk(args.dir / "1m", 1, 70), both)]
    if not args.skip_10m:
        plan.append(("10M x 70 d", make_desk(args.dir / "10m", 10, 70), ("duckdb",)))
    for name, desk, engines in plan:
        runs = []
        for engine in engines:
            run = measure(desk, engine, args.dir / "out" / f"{name}-{engine}".replace(" ", ""))
            print(name, engine, f"{run.wall_s:.1f} s", f"{run.rss_gib:.2f} GiB",
                  {k: round(v, 1) for k, v in run.doc["timings_s"].items()}, flush=True)
            runs.append(run)
        cases.append((name, desk, runs))
    body = _body(cases, load)
    print(body if args.no_page else write_section(body))


def _scaling(cases: list[tuple[str, Desk, list[Run]]]) -> str:
    """1M x 70 d -> 10M x 70 d with the columnar engine, stage by stage."""
    runs = {n: r for n, _, rs in cases for r in rs if r.engine == "duckdb"}
    small, big = runs.get("1M x 70 d"), runs.get("10M x 70 d")
    if small is None or big is None:
        return ""
    rows = ["Scaling, columnar engine, 1M x 70 d -> 10M x 70 d (10x orders, hosts and "
            "samples):", "", "| | 1M | 10M | ratio |", "|---|---|---|---|"]
    pairs = [(k, small.doc["timings_s"].get(k, 0.0), v)
             for k, v in big.doc["timings_s"].items()]
    pairs += [("wall", small.wall_s, big.wall_s)]
    for k, a, b in pairs:
        rows.append(f"| {k} | {a:.1f} s | {b:.1f} s | {b / a:.1f}x |" if a > 0
                    else f"| {k} | {a:.1f} s | {b:.1f} s | - |")
    rows.append(f"| peak RSS | {small.rss_gib:.2f} GiB | {big.rss_gib:.2f} GiB | "
                f"{big.rss_gib / small.rss_gib:.1f}x |")
    return "\n".join(rows)


def _body(cases: list[tuple[str, Desk, list[Run]]], load: float) -> str:
    stages = _stages([(f"{n} {r.engine}", r) for n, _, runs in cases for r in runs])
    found = []
    for name, desk, runs in cases:
        m = runs[-1].doc["matched"]
        truth = f"{desk.truth['cdt_p95']:+.2f}" if runs[-1].doc["inputs"]["orders"] \
            <= ORDERS_PER_CHUNK else "(ten desks)"
        found.append(f"| {name} | {truth} | {_ci(m['cdt_p95'])} | {_ci(m['mean'])} |")
    scaling = _scaling(cases)
    return f"""`.venv/bin/python -m bench.analysis_scale` (docs/ANALYSIS.md "Engines").

Each run is `ctdrill.api.analyze` (read, label, match, estimate with 200 bootstrap
replicates, canary DiD, execution outcomes, the three reports) in a fresh interpreter;
wall time includes its start and imports, peak RSS is the process's own (VmHWM, DuckDB
works inside it). Desks (ctdrill.analysis.synth, Parquet; generation not timed): *1M speed*
is bench/analysis_speed.py's (50 hosts, 7 days); *1M x 70 d* is 5 hosts over 70 days;
*10M x 70 d* is ten such desks side by side (50 hosts, 70 days, the timeline written
chunk by chunk), so 1M x 70 d -> 10M x 70 d is the scaling at a fixed span. The
1-minute load average was {load:.2f} before the runs and {os.getloadavg()[0]:.2f} after
(2 cores, shared with other jobs).

{_table(cases)}

## Stages (seconds, from analysis.json `timings_s`)

{stages}

{scaling}

`label` is where the engines differ (for DuckDB: each host's samples read from the file,
which these desks' Parquet files allow without partitioning as they are grouped by host,
and labelled host by host); reading the log and DuckDB's scan of the timeline happen
before it, in the wall time only. The replicate weights, the naive gaps and the four
QuantReg fits run in background threads beside `match`, `mean`, `tails`, `outcomes` and
`canary`: `quantreg` is only the wait for the last fit, and `tails` waits for the two
tail-slope fits before its own quantiles (docs/ANALYSIS.md "Speed without changing the
numbers"). The 1M x 70 d desk has no canary (its five hosts are one desk), the 10M one
has (its first desk's five hosts).

## What it found

| desk | CDT p95 truth | CDT p95, 95% CI | mean uplift, 95% CI |
|---|---|---|---|
{chr(10).join(found)}
"""


def _gen_main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, default=Path("/tmp/ctd-bench-scale"))
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--days", type=int, default=70)
    args = parser.parse_args(sys.argv[2:])
    t = time.perf_counter()
    desk = make_desk(args.dir, args.chunks, args.days)
    print(desk.samples, round(time.perf_counter() - t, 1), "s", T0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["generate"]:
        _gen_main()
    else:
        main()
