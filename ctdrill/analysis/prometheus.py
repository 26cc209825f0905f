"""Pressure timelines straight from Prometheus (`ctdrill analyze --prometheus URL`).

The conntrack series of node_exporter or of `ctdrill watch` are read over the log's span
(plus the label windows' margins) through /api/v1/query_range, in chunks of at most
`max_points` grid points, because Prometheus refuses a range query of more than 11,000
points per series. Each chunk asks a metric's value and `timestamp()` of the sample
behind it (one query, `paired_query`), so the grid's repeats (Prometheus carries the
last sample forward for up to 5 minutes) collapse back into the samples Prometheus
really scraped: a gap stays a gap, reported with each host's coverage, never filled in
silently. The samples
then go through `timeline_from_frame`, like a CSV export of the same series: the drop
counter is differenced per host and a counter reset counts as no drops there (reported).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ctdrill.analysis.data import F64, Timeline
from ctdrill.analysis.loaders import merge_timelines, timeline_from_frame
from ctdrill.analysis.promapi import PromClient, Series
from ctdrill.analysis.promhosts import host_of
from ctdrill.errors import InvalidInput
from ctdrill.metrics.quantile import nearest_rank

MAX_POINTS = 10_000
"""Grid points per range query: under Prometheus' 11,000 per series."""
GAP_FACTOR = 1.5
"""Samples further apart than this many expected intervals leave a gap (a missed scrape)."""
LOW_COVERAGE = 0.9
"""A host covering less of the log's span than this gets a note."""
PART = "ctdrill_part"
"""The label `paired_query` adds to tell a value from its sample's time."""


@dataclass(frozen=True)
class Family:
    """A set of metric names that together give a host's timeline columns."""

    name: str
    columns: tuple[tuple[str, str], ...]
    """(timeline column, metric name); `drops` is the cumulative drop counter."""

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(m for _, m in self.columns)


NODE = Family("node_exporter", (("count", "node_nf_conntrack_entries"),
                                ("max", "node_nf_conntrack_entries_limit"),
                                ("drops", "node_nf_conntrack_stat_drop")))
CTDRILL = Family("ctdrill", (("ctr", "ctdrill_conntrack_table_ratio"),
                             ("drops", "ctdrill_conntrack_new_flow_drops_total")))
FAMILIES = {"auto": (NODE, CTDRILL), "node": (NODE,), "ctdrill": (CTDRILL,)}
"""--prometheus-metrics: auto takes node_exporter's series for a host that has them all,
else ctdrill watch's."""


@dataclass(frozen=True)
class PromSource:
    """Where and what to read: the server, the user's label matchers, the grid step
    (None: half the shortest scrape interval of the server's targets), the metric family, the
    label naming the host (None: `host`, else `instance` without its port)."""

    url: str
    match: str | None = None
    step_s: float | None = None
    metrics: str = "auto"
    host_label: str | None = None
    timeout_s: float = 30.0
    max_points: int | None = None
    """Grid points per query (None: MAX_POINTS)."""


@dataclass(frozen=True)
class PromTimeline:
    """The timeline and what reading it found (JSON-ready): window, step, queries, and
    per host the family used, samples, coverage, gaps and counter resets; `notes` are
    the one-line findings worth showing."""

    timeline: Timeline
    report: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def selector(name: str, match: str | None) -> str:
    """`name{match}`; the match may come with or without its braces."""
    inner = (match or "").strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1].strip()
    return f"{name}{{{inner}}}" if inner else name


def chunks(start: float, end: float, step: float, max_points: int) -> list[tuple[float, float]]:
    """The window's grid (start, start + step, ... up to the first point at or after end)
    cut into consecutive (start, end) ranges of at most `max_points` points each; no
    point is asked twice."""
    if not (step > 0 and max_points >= 1 and end >= start):
        raise ValueError("chunks needs step > 0, max_points >= 1 and end >= start")
    last = math.ceil((end - start) / step - 1e-9)
    return [(start + k * step, start + min(k + max_points - 1, last) * step)
            for k in range(0, last + 1, max_points)]


def raw_samples(values: Series, stamps: Series) -> tuple[F64, F64]:
    """The samples behind one series' grid: (timestamp, value) joined on grid time, each
    scraped sample once (the grid repeats it until the next)."""
    ts_at = {t: float(v) for t, v in stamps.points}
    pairs = [(ts_at[t], float(v)) for t, v in values.points if t in ts_at]
    if not pairs:
        return np.empty(0), np.empty(0)
    arr = np.asarray(pairs, dtype=np.float64)
    ts, first = np.unique(arr[:, 0], return_index=True)
    return ts, arr[first, 1]


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in ("__name__", PART)))


def paired_query(sel: str) -> str:
    """One query for a selector's values and the times of the samples behind them, told
    apart by the PART label: one evaluation, so a scrape landing between two requests
    cannot pair a value with the next sample's time."""
    return (f'label_replace({sel}, "{PART}", "value", "", "") or '
            f'label_replace(timestamp({sel}), "{PART}", "timestamp", "", "")')


SeriesSamples = dict[tuple[tuple[str, str], ...], tuple[F64, F64]]


def fetch_metric(client: PromClient, name: str, match: str | None,
                 grid: Sequence[tuple[float, float]], step: float,
                 window: tuple[float, float]) -> SeriesSamples:
    """Every series of one metric over the chunked grid, as raw samples per label set,
    those scraped inside `window` only (not the older ones a lookback brings, nor those
    past its end that the last grid point may see)."""
    parts: dict[tuple[tuple[str, str], ...], list[tuple[F64, F64]]] = {}
    sel = selector(name, match)
    for a, b in grid:
        answer = client.query_range(paired_query(sel), a, b, step)
        values = {_key(s.labels): s for s in answer if s.labels.get(PART) == "value"}
        for s in answer:
            v = values.get(_key(s.labels))
            if s.labels.get(PART) == "timestamp" and v is not None:
                parts.setdefault(_key(s.labels), []).append(raw_samples(v, s))
    out: SeriesSamples = {}
    for key, pieces in parts.items():
        ts = np.concatenate([p[0] for p in pieces])
        vs = np.concatenate([p[1] for p in pieces])
        ts, first = np.unique(ts, return_index=True)
        inside = (ts >= window[0]) & (ts <= window[1])
        if inside.any():
            out[key] = (ts[inside], vs[first][inside])
    return out


def coverage(ts: F64, lo: float, hi: float, max_gap_s: float) -> float:
    """engine/coverage.py's definition, vectorised: the fraction of [lo, hi] lying within
    `max_gap_s` after a sample (`ts` sorted, unique)."""
    if not hi > lo or ts.size == 0:
        return 0.0
    reach = np.minimum(ts + max_gap_s, np.append(ts[1:], np.inf))
    covered = np.clip(np.minimum(reach, hi) - np.maximum(ts, lo), 0.0, None).sum()
    return float(min(1.0, covered / (hi - lo)))


def gaps(ts: F64, step: float) -> tuple[int, float, float]:
    """(gaps, largest gap in s, the limit): intervals over GAP_FACTOR times the expected
    one (the step or the host's median interval, whichever is longer)."""
    d = np.diff(ts)
    median = nearest_rank(d.tolist(), 0.5) if d.size else None
    limit = GAP_FACTOR * max(step, median or 0.0)
    return int((d > limit).sum()), float(d.max()) if d.size else 0.0, limit


def join_host(family: Family, samples: dict[str, tuple[F64, F64]]) -> tuple[F64, dict[str, F64],
                                                                              int, int]:
    """One host's rows: the timestamps every metric of the family has a finite sample
    at, each column's values there, and how many samples were left out as incomplete
    (another metric lacks that time) or not finite."""
    finite = {m: (ts[np.isfinite(v)], v[np.isfinite(v)]) for m, (ts, v) in samples.items()}
    non_finite = sum(samples[m][0].size - finite[m][0].size for m in samples)
    common = finite[family.metrics[0]][0]
    for m in family.metrics[1:]:
        common = np.intersect1d(common, finite[m][0], assume_unique=True)
    cols = {col: finite[m][1][np.searchsorted(finite[m][0], common)]
            for col, m in family.columns}
    incomplete = sum(finite[m][0].size for m in family.metrics) - common.size * len(
        family.metrics)
    return common, cols, incomplete, non_finite


def host_report(family: Family, ts: F64, drops: F64, lo: float, hi: float, step: float,
                incomplete: int, non_finite: int) -> dict[str, Any]:
    """What one host's samples cover and where its drop counter went down."""
    n_gaps, largest, limit = gaps(ts, step)
    down = np.flatnonzero(np.diff(drops) < 0) + 1
    return {"metrics": family.name, "samples": int(ts.size),
            "span": [float(ts[0]), float(ts[-1])] if ts.size else [],
            "coverage": round(coverage(ts, lo, hi, limit), 4), "gaps": n_gaps,
            "largest_gap_s": round(largest, 3), "counter_resets": int(down.size),
            "reset_times": [float(t) for t in ts[down[:5]]], "incomplete": incomplete,
            "non_finite": non_finite}


def by_host(fetched: dict[str, SeriesSamples], host_label: str | None
            ) -> dict[str, dict[str, tuple[F64, F64]]]:
    """metric -> label set -> samples, regrouped as host -> metric -> samples; two
    series of one metric on one host (e.g. two jobs scraping it) are refused."""
    out: dict[str, dict[str, tuple[F64, F64]]] = {}
    for metric, series in fetched.items():
        for key, samples in series.items():
            labels = dict(key)
            host = host_of(labels, host_label, metric)
            if metric in out.setdefault(host, {}):
                raise InvalidInput(
                    f"host {host} has more than one {metric} series (e.g. "
                    f"{_show(labels)}) at the Prometheus server",
                    "narrow the selection with --prometheus-match (e.g. 'job=\"node\"')")
            out[host][metric] = samples
    return out


def _show(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def choose(families: Iterable[Family], metrics: dict[str, Any]) -> Family | None:
    """The first family whose every metric the host has."""
    return next((f for f in families if all(m in metrics for m in f.metrics)), None)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def resolve_step(client: PromClient, src: PromSource) -> float:
    """The grid step: the user's, else half the server's shortest scrape interval. A
    grid point sees only the newest sample at or before it, so a grid as coarse as the
    interval loses a sample whenever scrape jitter puts two between neighbouring points;
    at half the interval every sample has a point of its own (a finer grid only costs
    queries: each sample is read once either way)."""
    if src.step_s is not None:
        return src.step_s
    interval = client.scrape_interval()
    if interval is None:
        raise InvalidInput(f"cannot tell the scrape interval: {client.url} lists no "
                           "active target with one",
                           "pass --prometheus-step SECONDS (half the scrape interval)")
    return interval / 2


def _notes(host: str, rep: dict[str, Any], family: Family) -> list[str]:
    notes = []
    if rep["gaps"] or rep["coverage"] < LOW_COVERAGE:
        first, last = rep["span"]
        notes.append(f"{host}: samples ({_iso(first)}..{_iso(last)}) cover "
                     f"{rep['coverage']:.1%} of the log's span, {rep['gaps']} gap(s) "
                     f"inside (largest {rep['largest_gap_s']:g} s); orders without samples "
                     "are unobserved, not interpolated")
    if rep["counter_resets"]:
        notes.append(f"{host}: {dict(family.columns)['drops']} went down "
                     f"{rep['counter_resets']} time(s) (counter reset, first at "
                     f"{_iso(rep['reset_times'][0])}); counted as no drops there")
    return notes


def assemble(hosts: dict[str, dict[str, tuple[F64, F64]]], families: Sequence[Family],
             lo: float, hi: float, step: float,
             ) -> tuple[dict[str, list[pd.DataFrame]], dict[str, Any], list[str]]:
    """Per family, one frame per host (t, host, its columns); per host, its report;
    and the notes (gaps, low coverage, counter resets, hosts left out)."""
    frames: dict[str, list[pd.DataFrame]] = {}
    reports: dict[str, Any] = {}
    notes: list[str] = []
    for host in sorted(hosts):
        family = choose(families, hosts[host])
        if family is None:
            have = sorted(hosts[host])
            lacks = [m for f in families for m in f.metrics if m not in have]
            notes.append(f"{host}: left out, it lacks {', '.join(lacks)} "
                         f"(has {', '.join(have)})")
            continue
        ts, cols, incomplete, non_finite = join_host(family, hosts[host])
        if ts.size == 0:
            notes.append(f"{host}: left out, its {family.name} series share no sample time")
            continue
        rep = host_report(family, ts, cols["drops"], lo, hi, step, incomplete, non_finite)
        reports[host] = rep
        notes += _notes(host, rep, family)
        frames.setdefault(family.name, []).append(pd.DataFrame({"t": ts, "host": host, **cols}))
    return frames, reports, notes


def load_prometheus(src: PromSource, lo: float, hi: float, margin_s: float,
                    client: PromClient | None = None) -> PromTimeline:
    """The conntrack timeline over [lo, hi] (the log's span) plus `margin_s` and three
    steps either side (the label windows' reach), read from the server `src` names
    (through `client` when given: the tests replay recorded answers)."""
    if src.metrics not in FAMILIES:
        raise InvalidInput(f"--prometheus-metrics {src.metrics!r} is not a family",
                           "use " + ", ".join(FAMILIES))
    client = client or PromClient(src.url, src.timeout_s)
    step = resolve_step(client, src)
    start, end = lo - margin_s - 3 * step, hi + margin_s + 3 * step
    grid = chunks(start, end, step, src.max_points or MAX_POINTS)
    families = FAMILIES[src.metrics]
    names = list(dict.fromkeys(m for f in families for m in f.metrics))
    if src.match:
        client.check_query(selector(names[0], src.match), end)
    fetched = {m: fetch_metric(client, m, src.match, grid, step, (start, end)) for m in names}
    if not any(fetched.values()):
        raise InvalidInput(
            f"no series at {client.url} for {', '.join(names)}"
            + (f" matching {{{(src.match or '').strip().strip('{}')}}}" if src.match else "")
            + f" between {_iso(start)} and {_iso(end)}",
            "check --prometheus-match, and that Prometheus scraped node_exporter's "
            "conntrack collector or ctdrill watch over the log's span")
    frames, reports, notes = assemble(by_host(fetched, src.host_label), families, lo, hi,
                                      step)
    if not frames:
        raise InvalidInput(f"no host at {client.url} has every series of a metric family: "
                           + "; ".join(notes), "scrape node_exporter's conntrack collector "
                           "or ctdrill watch, or choose one with --prometheus-metrics")
    source = f"prometheus {client.url}" + (f" {{{src.match.strip().strip('{}')}}}"
                                           if src.match else "")
    parts = [timeline_from_frame(pd.concat(dfs, ignore_index=True), source)
             for dfs in frames.values()]
    report = {"url": client.url, "match": src.match, "step_s": step,
              "window": [start, end], "queries": client.requests, "chunks": len(grid),
              "metrics_tried": names, "hosts": reports, "notes": notes}
    return PromTimeline(merge_timelines(parts, source), report, notes)
