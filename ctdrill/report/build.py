"""Journal records -> the report model (pure).

The journal is the only input: what ran (start: the spec), what changed (revert_plan,
intent), what was seen (samples, transitions, probe_end, load_end, step_start), what
was judged (metrics, verdict) and how it ended (revert, abort, end, and a later
`ctdrill revert`'s recovery records). Records of unknown types are ignored and a
half-written journal (a crash, a run still going) still gives a report, marked
incomplete, so the report never hides a run.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from ctdrill.report.model import (
    REGIMES,
    Band,
    ExpectationRow,
    HostChange,
    HostTimeline,
    ProbeWindow,
    Quantiles,
    RatePhase,
    RegimeProbe,
    Report,
    RevertRow,
    Status,
    StepHost,
    StepRow,
    SurgeProfile,
    SysctlChange,
    TransitionRow,
    Window,
    regime_level,
)
from ctdrill.spec.models import DrillSpec
from ctdrill.surge.shapes import RateSchedule, fill_schedule, shape_schedule
from ctdrill.surge.spec import ReplayShape, SurgeLoad

Record = Mapping[str, Any]

STATUS_BY_EXIT: dict[int, Status] = {0: "passed", 1: "failed", 2: "refused", 3: "aborted",
                                     4: "revert_failed", 5: "refused"}


def _num(value: Any) -> float | None:
    """A finite float, or None for anything else (missing, null, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if f == f and f not in (float("inf"), float("-inf")) else None


def _int(value: Any) -> int:
    f = _num(value)
    return int(f) if f is not None else 0


def _map(value: Any) -> Mapping[str, Any]:
    """The value if it is a JSON object, else an empty one: a record may lack a field."""
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    """The value if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _spec(start: Record) -> DrillSpec | None:
    """The drill spec the run used, or None when this ctdrill cannot read it back
    (a journal from another version): the report then shows what the records say."""
    try:
        return DrillSpec.model_validate(start.get("spec") or {})
    except ValueError:
        return None


def _origin(records: Sequence[Record], windows: Mapping[str, list[Window]],
            start: Record) -> float:
    """When the observation started. Each load/probe/step start record says how far
    into the observation it was due (offset_s; the first step at 0), but is written
    after any step change made in the same tick, so the earliest estimate is the best;
    without them, the first telemetry window, else the start record."""
    found = []
    for r in records:
        t = _num(r.get("t"))
        if t is None:
            continue
        if r.get("type") in ("load_start", "probe_start"):
            found.append(t - (_num(r.get("offset_s")) or 0.0))
        elif r.get("type") == "step_start" and _int(r.get("index")) == 0:
            found.append(t)
    found += [ws[0].t - ws[0].window_s for ws in windows.values() if ws]
    if found:
        return min(found)
    return _num(start.get("t")) or 0.0


def _windows(records: Sequence[Record]) -> dict[str, list[Window]]:
    out: dict[str, list[Window]] = {}
    for r in records:
        if r.get("type") != "samples":
            continue
        host = _str(r.get("host"))
        for entry in _list(r.get("samples")):
            m = entry.get("metrics") if isinstance(entry, Mapping) else None
            if not isinstance(m, Mapping) or _num(m.get("t")) is None:
                continue
            out.setdefault(host, []).append(Window(
                t=float(m["t"]), ctr=_num(m.get("ctr")) or 0.0,
                hcp95=_num(m.get("hcp95")) or 0.0, nfd_per_s=_num(m.get("nfd_per_s")) or 0.0,
                new_flows_per_s=_num(m.get("new_flows_per_s")) or 0.0,
                count=_int(m.get("count")), max=_int(m.get("max")),
                buckets=_int(m.get("buckets")), window_s=_num(m.get("window_s")) or 0.0))
    for ws in out.values():
        ws.sort(key=lambda w: w.t)
    return out


def _rel(t: float | None, origin: float) -> float:
    return (t if t is not None else origin) - origin


def _transitions(records: Sequence[Record], origin: float) -> list[TransitionRow]:
    rows = []
    for r in records:
        if r.get("type") != "transition":
            continue
        advice = _map(r.get("advice"))
        rows.append(TransitionRow(
            host=_str(r.get("host")), t=_rel(_num(r.get("t")), origin),
            from_state=_str(r.get("from_state")), to_state=_str(r.get("to_state")),
            signal=_str(r.get("signal")), threshold=_num(r.get("threshold")),
            value=_num(r.get("value")), detail=_str(r.get("detail")),
            advice=_str(advice.get("summary")),
            actions=tuple(str(a) for a in _list(advice.get("actions")))))
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


def regime_at(timelines: Sequence[HostTimeline], t: float) -> str | None:
    """The worst regime any observed host was in at time t (None outside every band)."""
    found = [b.regime for tl in timelines for b in tl.bands if b.start <= t < b.end]
    return max(found, key=regime_level) if found else None


def _quantiles(value: Any) -> Quantiles:
    q = _map(value)
    return Quantiles(_num(q.get("p50")), _num(q.get("p95")), _num(q.get("p99")),
                     _num(q.get("max")))


def _probe_windows(result: Record, origin: float,
                   timelines: Sequence[HostTimeline]) -> list[ProbeWindow]:
    out = []
    for w in _list(result.get("windows")):
        if not isinstance(w, Mapping) or _num(w.get("start")) is None:
            continue
        start = _rel(_num(w.get("start")), origin)
        width = _num(w.get("width")) or 1.0
        out.append(ProbeWindow(
            start=start, width=width, messages=_int(w.get("messages")),
            timeouts=_int(w.get("timeouts")), dwell_ms=_quantiles(w.get("dwell_ms")),
            osd_ms=_quantiles(w.get("osd_ms")), is_bps=_quantiles(w.get("is_bps")),
            regime=regime_at(timelines, start + width / 2)))
    return out


def _window_values(ws: Sequence[ProbeWindow], metric: str, q: str) -> list[float]:
    """One quantile (q) of one probe metric over windows, the windows that have it."""
    found = (getattr(getattr(w, metric), q) for w in ws)
    return [float(v) for v in found if v is not None]


def _by_regime(windows: Sequence[ProbeWindow]) -> list[RegimeProbe]:
    rows = []
    for regime in REGIMES:
        ws = [w for w in windows if w.regime == regime and w.messages > 0]
        if not ws:
            continue
        dwell99 = _window_values(ws, "dwell_ms", "p99")
        osd99 = _window_values(ws, "osd_ms", "p99")
        rows.append(RegimeProbe(
            regime=regime, windows=len(ws), messages=sum(w.messages for w in ws),
            timeouts=sum(w.timeouts for w in ws),
            dwell_p50_ms=_median(_window_values(ws, "dwell_ms", "p50")),
            dwell_p99_ms=_median(dwell99), dwell_worst_p99_ms=max(dwell99, default=None),
            osd_p50_ms=_median(_window_values(ws, "osd_ms", "p50")),
            osd_p99_ms=_median(osd99), osd_worst_p99_ms=max(osd99, default=None)))
    return rows


def _surge(spec: DrillSpec | None, start_rec: Record, load_start: Record | None,
           load_end: Record | None, origin: float,
           profile: Sequence[tuple[float, float]] | None) -> tuple[SurgeProfile | None, str]:
    """Requested rate over time (from the spec's shape) and achieved mean per phase
    (from the load result); a note says what could not be drawn."""
    raw_load = _map(_map(start_rec.get("spec")).get("load"))
    kind = _str(raw_load.get("kind")) or "none"
    if kind == "none" or load_start is None:
        return None, ""
    result = (load_end or {}).get("result")
    result = dict(result) if isinstance(result, Mapping) else {}
    t_load = _rel(_num(load_start.get("t")), origin)
    shape_kind = _str(_map(raw_load.get("shape")).get("kind")) if kind == "surge" else kind
    phases_raw = _map(result.get("phases"))
    achieved, t = [], t_load
    for name in ("fill", "shape"):
        ph = phases_raw.get(name)
        if not isinstance(ph, Mapping):
            continue
        dur = _num(ph.get("duration_s")) or 0.0
        achieved.append(RatePhase(name, t, t + dur, _num(ph.get("rate")) or 0.0,
                                  _num(ph.get("requested")), _int(ph.get("flows"))))
        t += dur
    requested: list[tuple[float, float]] = []
    note = ""
    if spec is not None and kind == "surge":
        requested, note = _requested(spec, t_load, achieved, profile)
    elif kind != "surge":
        note = f"a {kind} load has no rate profile; the overlay is the measured new-flow rate"
    return SurgeProfile(kind=kind, shape=shape_kind, requested=tuple(requested),
                        achieved=tuple(achieved), note=note, result=result), note


def _requested(spec: DrillSpec, t_load: float, achieved: Sequence[RatePhase],
               profile: Sequence[tuple[float, float]] | None
               ) -> tuple[list[tuple[float, float]], str]:
    """The requested rate as polyline vertices: the fill at its rate, then the shape's
    schedule (the same pure schedule the surge paces by) from the fill's measured end."""
    load = spec.load
    if not isinstance(load, SurgeLoad):
        return [], ""
    points: list[tuple[float, float]] = []
    t = t_load
    if load.fill is not None:
        fill = fill_schedule(load.fill.flows, load.fill.rate, load.max_duration_s)
        # the shape starts once every worker finished the fill: the measured fill time
        done = next((p.end for p in achieved if p.name == "fill"),
                    t + (fill.duration if fill.paced else 0.0))
        if load.fill.rate is not None:
            points += [(t, 0.0), (t, load.fill.rate), (done, load.fill.rate), (done, 0.0)]
        t = done
    shape = load.shape
    if isinstance(shape, ReplayShape) and (shape.pcap is not None or profile is None):
        why = "a pcap replay" if shape.pcap else f"profile {shape.profile} not found"
        return points, f"requested rate of the shape not drawn ({why})"
    try:
        sched = shape_schedule(shape, profile)
    except (ValueError, TypeError) as exc:
        return points, f"requested rate of the shape not drawn ({exc})"
    if not isinstance(sched, RateSchedule) or not sched.paced:
        return points, "the shape is unpaced (max): only the achieved rate is drawn"
    for seg in sched.segments:
        points += [(t + seg.start, seg.rate0), (t + seg.end, seg.rate1)]
    if sched.segments:
        points.append((t + sched.segments[-1].end, 0.0))
    return points, ""


def _changes(records: Sequence[Record]) -> list[HostChange]:
    """Base changes from the revert_plan views; step changes from the steps' intents,
    each 'before' being the value the previous step (or the snapshot) left."""
    snapshots: dict[str, Mapping[str, Any]] = {}
    out: list[HostChange] = []
    current: dict[tuple[str, str], str] = {}
    for r in records:
        kind = r.get("type")
        host = _str(r.get("host"))
        if kind == "snapshot" and isinstance(r.get("snapshot"), Mapping):
            snapshots[host] = r["snapshot"]
        elif kind == "revert_plan" and isinstance(r.get("view"), Mapping):
            v = r["view"]
            changes = [SysctlChange(_str(c.get("key")), _str(c.get("before")),
                                    _str(c.get("after")))
                       for c in map(_map, _list(v.get("sysctl"))) if c.get("changes", True)]
            for c in changes:
                current[(host, c.key)] = c.after
            if changes or v.get("nft_rules"):
                out.append(HostChange(host, bool(v.get("kernel_owner")), None, tuple(changes),
                                      _str(v.get("nft_table")) or None,
                                      _str(v.get("nft_rules")) or None))
        elif kind == "intent" and r.get("step"):
            snap = snapshots.get(host, {})
            values = _map(snap.get("sysctl"))
            changes = []
            for key, after in _map(r.get("sysctl")).items():
                before = current.get((host, key), values.get(key))
                changes.append(SysctlChange(key, None if before is None else str(before),
                                            str(after)))
                current[(host, key)] = str(after)
            nft = r.get("nft") if isinstance(r.get("nft"), Mapping) else None
            out.append(HostChange(host, bool(snap.get("kernel_owner")), _str(r.get("step")),
                                  tuple(changes),
                                  f"{nft.get('family')} {nft.get('table')}" if nft else None,
                                  _str(nft.get("body")) or None if nft else None))
    return out


def _reverts(records: Sequence[Record]) -> tuple[list[RevertRow], bool]:
    latest: dict[str, RevertRow] = {}
    recovered = False
    for r in records:
        if r.get("type") == "recovery_end":
            recovered = bool(r.get("verified"))
        if r.get("type") != "revert":
            continue
        restored = _map(r.get("restored"))
        dm = _map(r.get("deadman"))
        deadman = (f"fired ({dm['fired']})" if dm.get("fired") else
                   "disarmed" if dm.get("armed") else "not armed")
        host = _str(r.get("host"))
        latest[host] = RevertRow(
            host=host, verified=bool(r.get("verified")),
            restored=tuple((str(k), _str(v[0]) if isinstance(v, list) and v else "",
                            _str(v[-1]) if isinstance(v, list) and v else _str(v))
                           for k, v in restored.items()),
            deleted=tuple(str(d) for d in _list(r.get("deleted"))),
            problems=tuple(str(p) for p in _list(r.get("problems"))),
            source=_str(r.get("source")) or "run", deadman=deadman)
    return [latest[h] for h in sorted(latest)], recovered


def _expectations(records: Sequence[Record], spec: DrillSpec | None,
                  judged: bool) -> list[ExpectationRow]:
    rows = [ExpectationRow(_str(r.get("name")), bool(r.get("passed")), _num(r.get("observed")),
                           _str(r.get("detail")))
            for r in records if r.get("type") == "verdict"]
    if spec is not None and not judged:
        seen = {row.name for row in rows}
        rows += [ExpectationRow(e.describe(), None, None, "not judged: the run did not get "
                                "that far") for e in spec.expect if e.describe() not in seen]
    return rows


def _steps(records: Sequence[Record], origin: float, end: float,
           timelines: Sequence[HostTimeline], probe: Sequence[ProbeWindow],
           changes: Sequence[HostChange]) -> list[StepRow]:
    """Each step from its start record to the next one's (the last to the end of the
    observation). Like the judge, a step's measured span begins once its change was
    applied (its last outcome record), and only windows wholly inside it count."""
    starts = [(_str(r.get("step")), _int(r.get("index")), _rel(_num(r.get("t")), origin))
              for r in records if r.get("type") == "step_start"]
    applied: dict[str, float] = {}
    for r in records:
        if r.get("type") == "outcome" and r.get("step") and _num(r.get("t")) is not None:
            applied[_str(r.get("step"))] = _rel(_num(r.get("t")), origin)
    rows = []
    for i, (name, index, begin) in enumerate(starts):
        lo = max(begin, applied.get(name, begin))
        hi = starts[i + 1][2] if i + 1 < len(starts) else end
        hosts = []
        for tl in timelines:
            ws = [w for w in tl.windows
                  if lo <= w.t - origin - w.window_s and w.t - origin < hi]
            hosts.append(StepHost(
                tl.host, len(ws),
                statistics.fmean(w.ctr for w in ws) if ws else None,
                max((w.ctr for w in ws), default=None),
                statistics.fmean(w.nfd_per_s for w in ws) if ws else None,
                max((w.hcp95 for w in ws), default=None)))
        pws = [w for w in probe if lo <= w.start < hi and w.messages > 0]
        settings = tuple((c.host, s.key, s.after) for c in changes if c.step == name
                         for s in c.sysctl)
        rows.append(StepRow(
            name=name, index=index, start=begin, end=hi, settings=settings,
            hosts=tuple(hosts), probe_messages=sum(w.messages for w in pws),
            probe_dwell_p99_ms=_median([w.dwell_ms.p99 for w in pws
                                        if w.dwell_ms.p99 is not None]),
            probe_cost_p95_bps=_median([w.is_bps.p95 for w in pws
                                        if w.is_bps.p95 is not None])))
    return rows


def _key_metrics(records: Sequence[Record], timelines: Sequence[HostTimeline]
                 ) -> dict[str, dict[str, float | None]]:
    """The engine's own key metrics record; recomputed from the windows when the run
    ended before writing it."""
    for r in records:
        if r.get("type") == "metrics" and isinstance(r.get("metrics"), Mapping):
            return {str(h): {str(k): _num(v) for k, v in m.items()}
                    for h, m in r["metrics"].items() if isinstance(m, Mapping)}
    return {tl.host: {"ctr_max": max(w.ctr for w in tl.windows),
                      "nfd_per_s_max": max(w.nfd_per_s for w in tl.windows),
                      "hcp95_max": max(w.hcp95 for w in tl.windows)}
            for tl in timelines if tl.windows}


def _thresholds(spec: DrillSpec | None) -> dict[str, tuple[tuple[str, float], ...]]:
    if spec is None:
        return {}
    rg = spec.regime
    return {"ctr": (("tightening", rg.ctr_tightening_enter),
                    ("pressured", rg.ctr_pressured_enter)),
            "hcp95": (("tightening", float(rg.hcp95_tightening_enter)),)}


def _revert_hosts(records: Sequence[Record]) -> tuple[str, ...]:
    """Hosts with a revert plan: the run may have changed each, so each must be reverted."""
    return tuple(sorted({_str(r.get("host")) for r in records
                         if r.get("type") == "revert_plan" and r.get("host")}))


def _first(records: Sequence[Record], kind: str) -> Record | None:
    return next((r for r in records if r.get("type") == kind), None)


def _last(records: Sequence[Record], kind: str) -> Record | None:
    return next((r for r in reversed(records) if r.get("type") == kind), None)


def build_report(records: Sequence[Record], *, journal: str = "",
                 profile: Sequence[tuple[float, float]] | None = None) -> Report:
    """The report of one run. `profile`: the replayed (t, rate) points, when the caller
    could read the spec's replay profile (the journal names it, it does not hold it)."""
    records = [r for r in records if isinstance(r, Mapping)]
    start = records[0] if records and records[0].get("type") == "start" else {}
    spec = _spec(start)
    end_rec = _last(records, "end")
    refused = _first(records, "refused")
    abort = _first(records, "abort")
    windows = _windows(records)
    origin = _origin(records, windows, start)
    transitions = _transitions(records, origin)
    last_t = max((ws[-1].t for ws in windows.values() if ws), default=origin)
    observed_end = _rel(last_t, origin)
    hosts = sorted(windows) or sorted({tr.host for tr in transitions})
    timelines = tuple(HostTimeline(
        host=h, windows=tuple(windows.get(h, [])),
        bands=_bands([tr for tr in transitions if tr.host == h],
                     _rel(windows[h][0].t - windows[h][0].window_s, origin)
                     if windows.get(h) else 0.0, observed_end),
        final_regime=next((tr.to_state for tr in reversed(transitions) if tr.host == h),
                          REGIMES[0] if windows.get(h) else None)) for h in hosts)

    probe_end = _last(records, "probe_end")
    probe_result = (probe_end or {}).get("result")
    probe_result = _map(probe_result)
    probe_windows = _probe_windows(probe_result, origin, timelines)
    if not windows and probe_windows:  # no telemetry: the probe's span is the axis
        observed_end = max(w.start + w.width for w in probe_windows)
    problems: list[str] = []
    surge, note = _surge(spec, start, _first(records, "load_start"),
                         _last(records, "load_end"), origin, profile)
    if note:
        problems.append(note)
    changes = _changes(records)
    reverts, recovered = _reverts(records)
    exit_code = _int(end_rec.get("exit_code")) if end_rec is not None else None
    status: Status
    if refused is not None:
        status = "refused"
    elif exit_code is None:
        status = "incomplete"
        problems.append("the journal has no end record: the run crashed or is still going")
    else:
        status = STATUS_BY_EXIT.get(exit_code, "aborted")
    reason = (_str((refused or {}).get("reason")) or _str((end_rec or {}).get("reason"))
              or _str((abort or {}).get("reason")) or None)
    judged = _first(records, "metrics") is not None
    started_at = _num(start.get("t")) or origin
    ended_at = _num(end_rec.get("t")) if end_rec is not None else None
    last_at = max((t for r in records if (t := _num(r.get("t"))) is not None),
                  default=started_at)
    timings_raw = (end_rec or {}).get("timings")
    timings = ({str(k): float(v) for k, v in timings_raw.items() if _num(v) is not None}
               if isinstance(timings_raw, Mapping) else {})
    raw_spec = _map(start.get("spec"))
    return Report(
        run_id=_str(start.get("run_id")), drill=_str(start.get("drill")) or "unknown",
        description=_str(raw_spec.get("description")), spec_path=_str(start.get("spec_path")),
        journal=journal, inventory=_str(start.get("inventory")),
        orchestrator=_str(start.get("orchestrator_host")), started_at=started_at,
        ended_at=ended_at, origin=origin,
        duration_s=timings.get("total", (ended_at or last_at) - started_at),
        status=status, exit_code=exit_code, reason=reason,
        aborted=(_str((refused or abort or {}).get("reason")) or "unknown reason"
                 if refused is not None or abort is not None else None),
        observed_s=observed_end,
        timelines=timelines, transitions=tuple(transitions), surge=surge,
        probe_host=(spec.probe.client if spec is not None and spec.probe is not None
                    else ("probe" if probe_end else None)),
        probe_windows=tuple(probe_windows),
        probe_by_regime=tuple(_by_regime(probe_windows)),
        probe_summary={k: v for k, v in probe_result.items() if k != "windows"},
        steps=tuple(_steps(records, origin, observed_end, timelines, probe_windows, changes)),
        expectations=tuple(_expectations(records, spec, judged)),
        changes=tuple(changes), reverts=tuple(reverts),
        revert_expected=_first(records, "revert_plan") is not None,
        recovered=recovered, key_metrics=_key_metrics(records, timelines),
        thresholds=_thresholds(spec), timings=timings, problems=tuple(problems),
        revert_hosts=_revert_hosts(records))
