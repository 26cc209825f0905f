"""The only module that reads files: execution logs (CSV/Parquet) and pressure timelines
(CSV/Parquet per-host samples, `observe --json`/watch JSON lines, drill journals), each
validated into the canonical arrays of `data`, with one clear error per problem."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

from ctdrill.analysis.data import (
    CANCEL_REPLACE,
    CT_PARTS,
    F64,
    I64,
    PASSIVE_FILL,
    TOP_PARTS,
    OrderLog,
    Timeline,
)
from ctdrill.analysis.timeparse import to_epoch_seconds
from ctdrill.errors import InvalidInput
from ctdrill.journal.reader import read_records
from ctdrill.journal.records import InvalidRecord, SamplesRecord
from ctdrill.regime.states import Regime

ORDER_COLUMNS = ("order_id", "host", "start", "end", "is_bps", "spread_bps", "volatility",
                 "participation")
ORDER_HINT = ("the execution log needs columns " + ", ".join(ORDER_COLUMNS)
              + " (docs/ANALYSIS.md)")
TIMELINE_HINT = ("a timeline CSV/Parquet needs t, host, and either ctr or count+max, and "
                 "either drops (the kernel's cumulative drop counter) or nfd_per_s "
                 "(docs/ANALYSIS.md)")
# Names other tools use for the same thing (node_exporter, Prometheus CSV exports).
TIMELINE_ALIASES = {
    "time": "t", "timestamp": "t", "ts": "t",
    "instance": "host", "target": "host", "node": "host",
    "entries": "count", "node_nf_conntrack_entries": "count",
    "limit": "max", "entries_limit": "max", "node_nf_conntrack_entries_limit": "max",
    "drop": "drops", "node_nf_conntrack_stat_drop": "drops",
}
PARQUET = (".parquet", ".pq")
# `ctdrill watch` streams regime transitions, not samples: each regime stands for the
# pressure that defines it (healthy: low; tightening: between; pressured or worse: high).
REGIME_PRESSURE = {
    "CT_HEALTHY": {"ctr": 0.0, "nfd_per_s": 0.0},
    "CT_TIGHTENING": {"ctr": 0.8, "nfd_per_s": 0.0},
    "CT_PRESSURED": {"ctr": 1.0, "nfd_per_s": 1.0},
    "CT_SAFE_CONTAIN": {"ctr": 1.0, "nfd_per_s": 1.0},
}
JSONL = (".jsonl", ".ndjson", ".json")
MARKOUT = re.compile(r"^markout(_[a-z0-9.]+)?_bps$")  # markout_5s_bps, markout_bps


@contextmanager
def system_pool() -> Iterator[None]:
    """Arrow allocates from glibc's malloc while reading a file (each buffer is freed to
    the pool it came from, so restoring the default after is safe). Its default pool,
    mimalloc, spent 12 s of system time reading the 10M-order log (1 GB of Parquet:
    6.9 s against 1.7 s wall with malloc, and a lower peak); why was not profiled."""
    before = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(before)


def read_table(path: Path, what: str) -> Any:
    """CSV or Parquet by suffix into a DataFrame; any parser failure becomes InvalidInput."""
    if not path.is_file():
        raise InvalidInput(f"{what} {path} does not exist", "pass an existing file")
    try:
        with system_pool():
            if path.suffix.lower() in PARQUET:
                return pd.read_parquet(path)
            return pd.read_csv(path, engine="pyarrow", dtype=_category_columns(path))
    except Exception as exc:  # pandas/pyarrow raise many types; all mean "unreadable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInput(f"cannot read {what} {path}: {first[:160]}",
                           "pass a CSV with a header row, or a Parquet file") from exc


def _category_columns(path: Path) -> dict[str, str]:
    """Read host names as categories: a 30-million-row export repeats a few dozen names,
    and parsing them as strings costs more than the rest of the file."""
    with path.open(errors="replace") as fh:
        header = fh.readline().strip().split(",")
    names = {"host", *(k for k, v in TIMELINE_ALIASES.items() if v == "host")}
    cols = [c.strip().strip('"') for c in header]
    return {c: "category" for c in cols if c.lower() in names}


def _lower_columns(df: Any) -> Any:
    return df.rename(columns={c: str(c).strip().lower() for c in df.columns})


def _require(df: Any, columns: Iterable[str], source: str, hint: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise InvalidInput(f"{source}: missing column{plural} {', '.join(missing)}", hint)
    if len(df) == 0:
        raise InvalidInput(f"{source}: no rows", "pass a file with data rows")


def _numeric(df: Any, column: str, source: str) -> F64:
    """A finite float column, or an error naming the first bad row."""
    col = df[column]
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInput(f"{source}: column '{column}' row {i + 1} is not a number: "
                           f"{str(col.iloc[i])[:40]!r}", "fix or drop that row")
    return np.asarray(values, dtype=np.float64)


def _hosts(col: Any, source: str) -> tuple[tuple[str, ...], I64]:
    if col.isna().any():
        i = int(np.flatnonzero(col.isna().to_numpy())[0])
        raise InvalidInput(f"{source}: column 'host' row {i + 1} is empty",
                           "every row needs a host name")
    codes, uniques = pd.factorize(col, sort=True)
    names = [str(u) for u in uniques]
    if len(set(names)) < len(names):  # e.g. 1 and "1" in one column: merge by text
        codes, uniques = pd.factorize(col.astype(str), sort=True)
        names = [str(u) for u in uniques]
    elif names != sorted(names):  # numbers sort differently from their text
        rank = np.argsort(np.argsort(np.asarray(names, dtype=object)))
        codes, names = rank[codes], sorted(names)
    return tuple(names), np.asarray(codes, dtype=np.int64)


def orders_from_frame(df: Any, source: str) -> OrderLog:
    """Validate an execution-log DataFrame into an OrderLog."""
    df = _lower_columns(df)
    _require(df, ORDER_COLUMNS, source, ORDER_HINT)
    hosts, host = _hosts(df["host"], source)
    start = to_epoch_seconds(df["start"], source, "start")
    end = to_epoch_seconds(df["end"], source, "end")
    if (end < start).any():
        i = int(np.flatnonzero(end < start)[0])
        raise InvalidInput(f"{source}: row {i + 1} ends before it starts",
                           "end must be at or after start")
    parts = {c: _numeric(df, c, source) for c in (*TOP_PARTS, *CT_PARTS) if c in df.columns}
    if "conntrack_bps" not in parts and all(c in parts for c in CT_PARTS):
        parts["conntrack_bps"] = parts["drop_gap_bps"] + parts["state_skew_bps"] \
            + parts["burst_recovery_bps"]
    outcomes, skipped = _outcomes(df, source, end - start)
    return OrderLog(source, hosts, host, start, end, _numeric(df, "is_bps", source),
                    _numeric(df, "spread_bps", source), _numeric(df, "volatility", source),
                    _numeric(df, "participation", source), parts, outcomes, skipped,
                    df["order_id"].to_numpy())


def _optional(df: Any, column: str, source: str, lo: float = -np.inf,
              hi: float = np.inf) -> F64:
    """An outcome column: numbers in [lo, hi], an empty cell meaning "no value for this
    order" (NaN, left out of that outcome); text or an out-of-range number is an error
    naming the row."""
    col = df[column]
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(values) & col.notna().to_numpy()
    bad |= np.isinf(values) | (values < lo) | (values > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        span = (f" in {lo:g}..{hi:g}" if np.isfinite(hi)
                else f" >= {lo:g}" if np.isfinite(lo) else "")
        raise InvalidInput(f"{source}: column '{column}' row {i + 1} is not a number{span}: "
                           f"{str(col.iloc[i])[:40]!r}",
                           "fix the row, or leave the cell empty (no value for that order)")
    return np.asarray(values, dtype=np.float64)


def _passive_fill(df: Any, source: str) -> F64 | str:
    """passive_fill_ratio, or passive_filled_qty / filled_qty; else what is missing."""
    if "passive_fill_ratio" in df.columns:
        return _optional(df, "passive_fill_ratio", source, 0.0, 1.0)
    pair = ("passive_filled_qty", "filled_qty")
    missing = [c for c in pair if c not in df.columns]
    if len(missing) == 2:
        return "no column passive_fill_ratio (nor passive_filled_qty and filled_qty)"
    if missing:
        return f"no column {missing[0]} (the ratio is passive_filled_qty / filled_qty)"
    passive, filled = (_optional(df, c, source, 0.0) for c in pair)
    over = passive > filled
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise InvalidInput(f"{source}: row {i + 1} has passive_filled_qty above filled_qty",
                           "the passive fills are part of the order's fills")
    return np.divide(passive, filled, out=np.full_like(filled, np.nan), where=filled > 0)


def _outcomes(df: Any, source: str, life_s: F64) -> tuple[dict[str, F64], dict[str, str]]:
    """The execution outcomes the log has (docs/ANALYSIS.md), and for each section it
    cannot feed, the column that is missing."""
    out: dict[str, F64] = {}
    skipped: dict[str, str] = {}
    fill = _passive_fill(df, source)
    if isinstance(fill, str):
        skipped["passive_fill"] = fill
    else:
        out[PASSIVE_FILL] = fill
    counts = [_optional(df, c, source, 0.0) for c in ("cancels", "replaces") if c in df.columns]
    if counts:
        total = np.sum(counts, axis=0) * 60  # per minute of the order's life; none at 0 s
        out[CANCEL_REPLACE] = np.divide(total, life_s, out=np.full_like(total, np.nan),
                                        where=life_s > 0)
    else:
        skipped["cancel_replace"] = "no column cancels or replaces"
    markouts = sorted(str(c) for c in df.columns if MARKOUT.match(str(c)))
    out.update({c: _optional(df, c, source) for c in markouts})
    if not markouts:
        skipped["markout"] = "no column markout_<horizon>_bps (e.g. markout_5s_bps)"
    return out, skipped


def load_orders(path: Path) -> OrderLog:
    """The log as arrays; the DataFrame read through Arrow is gone on return, and its
    freed buffers go back to the OS (pyarrow's allocator keeps them for reuse otherwise:
    0.4 GiB at 1M orders, held through the whole analysis)."""
    orders = orders_from_frame(read_table(path, "execution log"), str(path))
    pa.default_memory_pool().release_unused()
    return orders


def timeline_from_frame(df: Any, source: str) -> Timeline:
    """Per-host samples -> Timeline: CTR from ctr or count/max, NFD from nfd_per_s or the
    cumulative drop counter (differenced per host; a reset counts as no drops)."""
    df = _lower_columns(df)
    df = df.rename(columns={k: v for k, v in TIMELINE_ALIASES.items()
                            if k in df.columns and v not in df.columns})
    _require(df, ("t", "host"), source, TIMELINE_HINT)
    has_ctr = "ctr" in df.columns or ("count" in df.columns and "max" in df.columns)
    has_nfd = "nfd_per_s" in df.columns or "drops" in df.columns
    if not (has_ctr and has_nfd):
        need = [n for n, ok in (("ctr (or count and max)", has_ctr),
                                ("drops (or nfd_per_s)", has_nfd)) if not ok]
        raise InvalidInput(f"{source}: missing column {' and '.join(need)}", TIMELINE_HINT)
    hosts, host = _hosts(df["host"], source)
    t = to_epoch_seconds(df["t"], source, "t")
    if "ctr" in df.columns:
        ctr = _numeric(df, "ctr", source)
    else:
        count, maximum = _numeric(df, "count", source), _numeric(df, "max", source)
        ctr = np.divide(count, maximum, out=np.zeros_like(count), where=maximum > 0)
    order = sort_order(host, t)
    host, t, ctr = host[order], t[order], ctr[order]
    first = np.ones(host.size, dtype=bool)
    first[1:] = host[1:] != host[:-1]
    if "nfd_per_s" in df.columns:
        nfd = _numeric(df, "nfd_per_s", source)[order]
    else:
        nfd = drops_per_second(first, t, _numeric(df, "drops", source)[order])
    offsets = np.searchsorted(host, np.arange(len(hosts) + 1)).astype(np.int64)
    regime = None
    if "_regime" in df.columns:  # watch transitions: the regime each row enters
        regime = df["_regime"].to_numpy(dtype=np.int8)[order]
    return Timeline(source, hosts, offsets, t, ctr, nfd, regime=regime)


def drops_per_second(first: NDArray[np.bool_], t: F64, drops: F64) -> F64:
    """New-flow drops per second from the cumulative counter, rows sorted by (host, t):
    `first` marks each host's first row; it, a reset (the counter going down) and a
    zero gap count as no drops."""
    delta = np.diff(drops, prepend=drops[:1])
    dt = np.diff(t, prepend=t[:1])
    delta[first | (delta < 0)] = 0.0
    return np.asarray(np.divide(delta, dt, out=np.zeros_like(delta), where=dt > 0),
                      dtype=np.float64)


def sort_order(host: I64, t: F64) -> I64:
    """Sort by (host, t), skipping the sort when the file already is (a large export)."""
    same = host[1:] == host[:-1]
    if (host[1:] >= host[:-1]).all() and (t[1:][same] >= t[:-1][same]).all():
        return np.arange(host.size, dtype=np.int64)
    return np.asarray(np.lexsort((t, host)), dtype=np.int64)


def _is_journal(path: Path) -> bool:
    """A drill journal: its first line is a JSON object with a string `type`."""
    try:
        with path.open("rb") as f:
            first = next((line for line in f if line.strip()), b"")
        rec = json.loads(first)
    except (OSError, ValueError):
        return False
    return isinstance(rec, dict) and isinstance(rec.get("type"), str)


def _journal_rows(path: Path) -> list[dict[str, Any]]:
    """A drill journal's telemetry as rows, read as typed records: only its `samples`
    records (start, verdicts, the `metrics` summary, end are not samples). A batch
    entry's `metrics` is the window ending at that sample (a stream's first has none).
    A samples record that does not validate is refused; other records are not read."""
    records = read_records(path, lenient=True, require_start=False)
    bad = next((r for r in records if isinstance(r, InvalidRecord) and r.kind == "samples"),
               None)
    if bad is not None:
        raise InvalidInput(f"{path}: {bad.problem}", "pass the unedited journal of a run")
    return [{"host": r.host, "t": e.metrics.t, "ctr": e.metrics.ctr,
             "nfd_per_s": e.metrics.nfd_per_s}
            for r in records if isinstance(r, SamplesRecord)
            for e in r.samples if e.metrics is not None]


def _json_records(path: Path) -> list[Any]:
    """Every JSON value, one per line; a torn last line (a crashed writer) is left out."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise InvalidInput(f"cannot read timeline {path}: {exc.strerror}",
                           "pass a readable file") from exc
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            if i == len(lines) - 1:
                break
            raise InvalidInput(f"{path} line {i + 1} is not JSON",
                               "pass JSON lines, a drill journal, a CSV or Parquet") from exc
    return records


def _json_rows(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """Flat sample rows from a drill journal, `observe --json` lines, watch transitions or
    flat JSON lines, and whether the file was a drill journal."""
    if _is_journal(path):
        return _journal_rows(path), True
    rows: list[dict[str, Any]] = []
    seen_up: set[Any] = set()
    for rec in _json_records(path):
        if not isinstance(rec, dict):
            continue
        if rec.get("event") == "transition" or (
                rec.get("event") == "target_up" and rec.get("host") not in seen_up):
            # watch: the regime holds until the next transition; the machine starts healthy
            seen_up.add(rec.get("host"))
            state = rec.get("to_state", "CT_HEALTHY")
            known = state if state in REGIME_PRESSURE else "CT_PRESSURED"
            rows.append({"host": rec.get("host"), "t": rec.get("t"), "_step": True,
                         "_regime": Regime(known).level, **REGIME_PRESSURE[known]})
        elif "event" in rec:
            continue
        elif "metrics" in rec:  # observe --json
            if rec["metrics"]:
                rows.append({"host": rec.get("target", rec.get("host")), **rec["metrics"]})
        elif "t" in rec or "time" in rec or "timestamp" in rec:
            rows.append(rec)
    return rows, False


def _json_timeline(path: Path) -> Timeline | None:
    """A JSON-lines file as a Timeline; None for a drill journal without samples."""
    rows, journal = _json_rows(path)
    if not rows:
        if journal:
            return None
        raise InvalidInput(f"{path} holds no pressure samples",
                           "pass a drill journal, `ctdrill observe --json` output, or "
                           "JSON lines with host, t, ctr and nfd_per_s")
    df = _lower_columns(pd.DataFrame(rows))
    if "drops" in df.columns and "nfd_per_s" in df.columns:
        df = df.drop(columns=["drops"])  # observe metrics carry both; prefer the rate
    step = "_step" in df.columns
    if step and df["_step"].isna().any():
        raise InvalidInput(f"{path} mixes watch transitions with samples",
                           "pass the transitions stream and samples as separate "
                           "runs of analyze")
    tl = timeline_from_frame(df.drop(columns=["_step"], errors="ignore"), str(path))
    return replace(tl, step=step)


def merge_timelines(parts: Sequence[Timeline], source: str) -> Timeline:
    """Several timelines as one: hosts joined by name, rows sorted by (host, t). Each part
    was normalised on its own (a drop counter is differenced within its own file)."""
    if len({p.step for p in parts}) > 1:
        raise InvalidInput("the timelines mix watch transitions with sampled files",
                           "analyze one kind at a time")
    if len(parts) == 1:
        return replace(parts[0], source=source)
    hosts = tuple(sorted({h for p in parts for h in p.hosts}))
    index = {h: i for i, h in enumerate(hosts)}
    host = np.concatenate([np.repeat(np.array([index[h] for h in p.hosts], dtype=np.int64),
                                     np.diff(p.offsets)) for p in parts])
    t = np.concatenate([p.t for p in parts])
    order = sort_order(host, t)
    host = host[order]
    offsets = np.searchsorted(host, np.arange(len(hosts) + 1)).astype(np.int64)
    regimes = [p.regime for p in parts if p.regime is not None]
    regime = np.concatenate(regimes)[order] if len(regimes) == len(parts) else None
    return Timeline(source, hosts, offsets, t[order],
                    np.concatenate([p.ctr for p in parts])[order],
                    np.concatenate([p.nfd_per_s for p in parts])[order], step=parts[0].step,
                    regime=regime)


def load_timeline(paths: Sequence[Path],
                  skipped: Callable[[Path, str], None] | None = None) -> Timeline:
    """One Timeline from one or more files: drill journals, sample files and JSON lines,
    mixed freely (watch transitions excepted). Among several files, a drill journal
    without samples (a run refused or stopped before observing) is passed to `skipped`
    and left out, so `runs/*/journal.jsonl` works; alone, it is an error."""
    parts: list[Timeline] = []
    empty: list[Path] = []
    for path in paths:
        if not path.is_file():
            raise InvalidInput(f"timeline {path} does not exist", "pass an existing file")
        if path.suffix.lower() in JSONL:
            part = _json_timeline(path)
            if part is None:
                empty.append(path)
                continue
        else:
            part = timeline_from_frame(read_table(path, "timeline"), str(path))
        parts.append(part)
    if not parts:
        raise InvalidInput(f"{', '.join(str(p) for p in empty)}: no pressure samples "
                           "(the run observed nothing)",
                           "pass the journal of a run that reached its observation")
    for path in empty:
        if skipped is not None:
            skipped(path, "a drill journal without samples")
    return merge_timelines(parts, ", ".join(str(p) for p in paths))
