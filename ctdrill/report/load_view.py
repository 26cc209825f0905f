"""The load's rate profile (pure): requested over time, from the spec's shape, and the
achieved mean per phase, from the load's own result."""

from __future__ import annotations

from collections.abc import Sequence

from ctdrill.journal.records import LoadEndRecord, LoadStartRecord, StartRecord
from ctdrill.report.model import RatePhase, SurgeProfile
from ctdrill.report.timeline import rel
from ctdrill.spec.models import DrillSpec
from ctdrill.surge.shapes import RateSchedule, fill_schedule, shape_schedule
from ctdrill.surge.spec import ReplayShape, SurgeLoad

Points = list[tuple[float, float]]


def _achieved(load_end: LoadEndRecord | None, t_load: float) -> list[RatePhase]:
    """The fill then the shape phase, each from where the previous one ended."""
    result = load_end.load() if load_end is not None else None
    phases = result.phases if result is not None else {}
    achieved, t = [], t_load
    for name in ("fill", "shape"):
        ph = phases.get(name)
        if ph is None:
            continue
        dur = float(ph.duration_s)
        achieved.append(RatePhase(name, t, t + dur, float(ph.rate),
                                  None if ph.requested is None else float(ph.requested),
                                  ph.flows))
        t += dur
    return achieved


def surge_profile(spec: DrillSpec | None, start: StartRecord | None,
                  load_start: LoadStartRecord | None, load_end: LoadEndRecord | None,
                  origin: float, profile: Sequence[tuple[float, float]] | None
                  ) -> tuple[SurgeProfile | None, str]:
    """Requested rate over time (from the spec's shape) and achieved mean per phase
    (from the load result); a note says what could not be drawn."""
    load = start.spec_summary().load if start is not None else None
    kind = (load.kind if load is not None else "") or "none"
    if kind == "none" or load_start is None:
        return None, ""
    shape = load.shape if load is not None else None
    shape_kind = (shape.kind if shape is not None else "") if kind == "surge" else kind
    t_load = rel(load_start.t, origin)
    achieved = _achieved(load_end, t_load)
    requested: Points = []
    note = ""
    if spec is not None and kind == "surge":
        requested, note = _requested(spec, t_load, achieved, profile)
    elif kind != "surge":
        note = f"a {kind} load has no rate profile; the overlay is the measured new-flow rate"
    result = dict(load_end.result) if load_end is not None else {}
    return SurgeProfile(kind=kind, shape=shape_kind, requested=tuple(requested),
                        achieved=tuple(achieved), note=note, result=result), note


def _requested(spec: DrillSpec, t_load: float, achieved: Sequence[RatePhase],
               profile: Sequence[tuple[float, float]] | None) -> tuple[Points, str]:
    """The requested rate as polyline vertices: the fill at its rate, then the shape's
    schedule (the same pure schedule the surge paces by) from the fill's measured end."""
    load = spec.load
    if not isinstance(load, SurgeLoad):
        return [], ""
    points: Points = []
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
