"""Telemetry and regimes on the report's one time axis (pure): each host's windows, when
the observation started (the origin), the transitions and the regime bands they tile."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ctdrill.journal.records import (
    LoadStartRecord,
    ProbeStartRecord,
    Record,
    SamplesRecord,
    StartRecord,
    StepStartRecord,
    TransitionRecord,
)
from ctdrill.report.model import (
    REGIMES,
    Band,
    HostTimeline,
    SlabPoint,
    TransitionRow,
    Window,
    regime_level,
)


def rel(t: float | None, origin: float) -> float:
    """Seconds since the origin; a record without a time sits at the origin."""
    return (t if t is not None else origin) - origin


def windows(records: Sequence[Record]) -> dict[str, list[Window]]:
    """Each host's telemetry windows in time order (a stream's first sample has none)."""
    out: dict[str, list[Window]] = {}
    for r in records:
        if not isinstance(r, SamplesRecord):
            continue
        for entry in r.samples:
            m = entry.metrics
            if m is None or not math.isfinite(m.t):
                continue
            out.setdefault(r.host, []).append(Window(
                t=m.t, ctr=m.ctr, hcp95=float(m.hcp95), nfd_per_s=m.nfd_per_s,
                new_flows_per_s=m.new_flows_per_s, count=m.count, max=m.max,
                buckets=m.buckets, window_s=m.window_s))
    for ws in out.values():
        ws.sort(key=lambda w: w.t)
    return out


def slab_points(records: Sequence[Record]) -> dict[str, list[SlabPoint]]:
    """Each host's conntrack slab cache per sample, in time order: every sample that
    carries one (a stream's first too; none from an agent that could not read it)."""
    out: dict[str, list[SlabPoint]] = {}
    for r in records:
        if not isinstance(r, SamplesRecord):
            continue
        for entry in r.samples:
            s, slab = entry.sample, entry.sample.slab
            if slab is None or s.t is None or not math.isfinite(s.t):
                continue
            out.setdefault(r.host, []).append(SlabPoint(
                t=float(s.t), objects=slab.num_objs, active_objects=slab.active_objs,
                object_size=slab.objsize, bytes=slab.num_objs * slab.objsize))
    for points in out.values():
        points.sort(key=lambda p: p.t)
    return out


def origin_of(records: Sequence[Record], wins: Mapping[str, list[Window]],
              start: StartRecord | None) -> float:
    """When the observation started. Each load/probe/step start record says how far
    into the observation it was due (offset_s; the first step at 0), but is written
    after any step change made in the same tick, so the earliest estimate is the best;
    without them, the first telemetry window, else the start record."""
    found = []
    for r in records:
        if r.t is None:
            continue
        if isinstance(r, LoadStartRecord | ProbeStartRecord):
            found.append(r.t - r.offset_s)
        elif isinstance(r, StepStartRecord) and r.index == 0:
            found.append(r.t)
    found += [ws[0].t - ws[0].window_s for ws in wins.values() if ws]
    if found:
        return min(found)
    return start.t if start is not None and start.t is not None else 0.0


def transitions(records: Sequence[Record], origin: float) -> list[TransitionRow]:
    rows = [TransitionRow(
        host=r.host, t=rel(r.t, origin), from_state=r.from_state, to_state=r.to_state,
        signal=r.signal, threshold=float(r.threshold), value=float(r.value),
        detail=r.detail, advice=r.advice.summary, actions=tuple(r.advice.actions))
        for r in records if isinstance(r, TransitionRecord)]
    return sorted(rows, key=lambda tr: tr.t)


def _bands(trs: Sequence[TransitionRow], start: float, end: float) -> tuple[Band, ...]:
    """Regime spans of one host: healthy until the first transition, then each state
    until the next one, the last until the end of the observation."""
    bands = []
    regime, since = REGIMES[0], start
    for tr in trs:
        if tr.t > since:
            bands.append(Band(since, tr.t, regime))
        regime, since = tr.to_state, max(since, tr.t)
    if end > since:
        bands.append(Band(since, end, regime))
    return tuple(bands)


def timelines(wins: Mapping[str, list[Window]], trs: Sequence[TransitionRow],
              origin: float, end: float,
              slab: Mapping[str, list[SlabPoint]] | None = None) -> tuple[HostTimeline, ...]:
    """What the charts draw per host: the hosts with telemetry, else those with
    transitions; a host's bands start at its first window; `slab`: its slab cache."""
    slab = slab or {}
    hosts = sorted(wins) or sorted({tr.host for tr in trs})
    out = []
    for h in hosts:
        ws = wins.get(h, [])
        mine = [tr for tr in trs if tr.host == h]
        first = rel(ws[0].t - ws[0].window_s, origin) if ws else 0.0
        final = mine[-1].to_state if mine else (REGIMES[0] if ws else None)
        out.append(HostTimeline(host=h, windows=tuple(ws), bands=_bands(mine, first, end),
                                final_regime=final, slab=tuple(slab.get(h, ()))))
    return tuple(out)


def regime_at(lines: Sequence[HostTimeline], t: float) -> str | None:
    """The worst regime any observed host was in at time t (None outside every band)."""
    found = [b.regime for tl in lines for b in tl.bands if b.start <= t < b.end]
    return max(found, key=regime_level) if found else None
