"""Journal records -> the report model (pure).

The journal is the only input: what ran (start: the spec), what changed (revert_plan,
intent), what was seen (samples, transitions, probe_end, load_end, step_start), what
was judged (metrics, verdict) and how it ended (revert, abort, end, and a later
`ctdrill revert`'s recovery records). The records are the typed ones of
`ctdrill.journal`; a record of an unknown kind, or one that does not validate, is left
out, and a half-written journal (a crash, a run still going) still gives a report,
marked incomplete, so the report never hides a run. Each concern has its module:
timeline (windows, transitions, bands), probe_view, load_view, changes, judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from ctdrill.journal.records import (
    AbortRecord,
    EndRecord,
    LoadEndRecord,
    LoadStartRecord,
    MetricsRecord,
    ProbeEndRecord,
    Record,
    RecordModel,
    RefusedRecord,
    RevertPlanRecord,
    StartRecord,
    parse_record,
)
from ctdrill.report import changes, judged, timeline
from ctdrill.report.load_view import surge_profile
from ctdrill.report.model import Report, Status
from ctdrill.report.probe_view import by_regime, probe_windows
from ctdrill.spec.models import DrillSpec

STATUS_BY_EXIT: dict[int, Status] = {0: "passed", 1: "failed", 2: "refused", 3: "aborted",
                                     4: "revert_failed", 5: "refused"}
R = TypeVar("R")


def typed(records: Sequence[Record | Mapping[str, Any]]) -> list[Record]:
    """Typed records; plain JSON objects (what read_journal returns) parsed leniently."""
    return [r if isinstance(r, RecordModel) else parse_record(dict(r), lenient=True)
            for r in records if isinstance(r, RecordModel | Mapping)]


def _first(records: Sequence[Record], cls: type[R]) -> R | None:
    return next((r for r in records if isinstance(r, cls)), None)


def _last(records: Sequence[Record], cls: type[R]) -> R | None:
    return next((r for r in reversed(records) if isinstance(r, cls)), None)


def _spec(start: StartRecord | None) -> DrillSpec | None:
    """The drill spec the run used, or None when this ctdrill cannot read it back
    (a journal from another version): the report then shows what the records say."""
    try:
        return DrillSpec.model_validate(start.spec if start is not None else {})
    except ValueError:
        return None


def _status(end: EndRecord | None, refused: RefusedRecord | None,
            problems: list[str]) -> Status:
    if refused is not None:
        return "refused"
    if end is None:
        problems.append("the journal has no end record: the run crashed or is still going")
        return "incomplete"
    return STATUS_BY_EXIT.get(end.exit_code, "aborted")


def build_report(records: Sequence[Record | Mapping[str, Any]], *, journal: str = "",
                 profile: Sequence[tuple[float, float]] | None = None) -> Report:
    """The report of one run. `profile`: the replayed (t, rate) points, when the caller
    could read the spec's replay profile (the journal names it, it does not hold it)."""
    recs = typed(records)
    start = recs[0] if recs and isinstance(recs[0], StartRecord) else None
    spec = _spec(start)
    end, refused, abort = (_last(recs, EndRecord), _first(recs, RefusedRecord),
                           _first(recs, AbortRecord))
    stopped = refused or abort
    wins = timeline.windows(recs)
    origin = timeline.origin_of(recs, wins, start)
    transitions = timeline.transitions(recs, origin)
    observed_end = timeline.rel(max((ws[-1].t for ws in wins.values() if ws),
                                    default=origin), origin)
    lines = timeline.timelines(wins, transitions, origin, observed_end,
                               timeline.slab_points(recs))
    probe_end = _last(recs, ProbeEndRecord)
    probe = probe_windows(probe_end.probe() if probe_end else None, origin, lines)
    if not wins and probe:  # no telemetry: the probe's span is the axis
        observed_end = max(w.start + w.width for w in probe)
    surge, note = surge_profile(spec, start, _first(recs, LoadStartRecord),
                                _last(recs, LoadEndRecord), origin, profile)
    problems = [note] if note else []
    changed = changes.changes(recs)
    reverts, recovered = changes.reverts(recs)
    status = _status(end, refused, problems)
    started_at = start.t if start is not None and start.t else origin
    last_at = max((r.t for r in recs if r.t is not None), default=started_at)
    timings = dict(end.timings) if end is not None else {}
    summary = start.spec_summary() if start is not None else None
    return Report(
        run_id=start.run_id if start else "", drill=(start.drill if start else "") or "unknown",
        description=(summary.description if summary else None) or "",
        spec_path=start.spec_path if start else "", journal=journal,
        inventory=start.inventory if start else "",
        orchestrator=start.orchestrator_host if start else "",
        started_at=started_at, ended_at=end.t if end else None, origin=origin,
        duration_s=timings.get("total", ((end.t if end else None) or last_at) - started_at),
        status=status, exit_code=end.exit_code if end else None,
        reason=(refused.reason if refused else "") or (end.reason if end else "")
        or (abort.reason if abort else "") or None,
        aborted=(stopped.reason or "unknown reason") if stopped is not None else None,
        observed_s=observed_end, timelines=lines, transitions=tuple(transitions),
        surge=surge,
        probe_host=(spec.probe.client if spec is not None and spec.probe is not None
                    else ("probe" if probe_end else None)),
        probe_windows=tuple(probe), probe_by_regime=tuple(by_regime(probe)),
        probe_summary={k: v for k, v in (probe_end.result if probe_end else {}).items()
                       if k != "windows"},
        steps=tuple(judged.steps(recs, origin, observed_end, lines, probe, changed)),
        expectations=tuple(judged.expectations(recs, spec, _first(recs, MetricsRecord)
                                               is not None)),
        changes=tuple(changed), reverts=tuple(reverts),
        revert_expected=_first(recs, RevertPlanRecord) is not None, recovered=recovered,
        key_metrics=judged.key_metrics(recs, lines), thresholds=judged.thresholds(spec),
        timings=timings, problems=tuple(problems), revert_hosts=changes.revert_hosts(recs))
