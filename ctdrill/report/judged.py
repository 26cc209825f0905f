"""What the run judged (pure): expectations, the steps of a stepped drill with each
step's metrics, the key metrics and the regime thresholds drawn on the charts."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from ctdrill.journal.records import (
    MetricsRecord,
    OutcomeRecord,
    Record,
    StepStartRecord,
    VerdictRecord,
)
from ctdrill.report.model import (
    ExpectationRow,
    HostChange,
    HostTimeline,
    ProbeWindow,
    StepHost,
    StepRow,
)
from ctdrill.report.probe_view import typical
from ctdrill.report.timeline import rel
from ctdrill.spec.models import DrillSpec


def expectations(records: Sequence[Record], spec: DrillSpec | None,
                 judged: bool) -> list[ExpectationRow]:
    """The verdicts; a run that never judged lists the spec's expectations as such."""
    rows = [ExpectationRow(r.name, r.passed, None if r.observed is None else float(r.observed),
                           r.detail)
            for r in records if isinstance(r, VerdictRecord)]
    if spec is not None and not judged:
        seen = {row.name for row in rows}
        rows += [ExpectationRow(e.describe(), None, None, "not judged: the run did not get "
                                "that far") for e in spec.expect if e.describe() not in seen]
    return rows


def _step_host(tl: HostTimeline, origin: float, lo: float, hi: float) -> StepHost:
    ws = [w for w in tl.windows if lo <= w.t - origin - w.window_s and w.t - origin < hi]
    return StepHost(tl.host, len(ws),
                    statistics.fmean(w.ctr for w in ws) if ws else None,
                    max((w.ctr for w in ws), default=None),
                    statistics.fmean(w.nfd_per_s for w in ws) if ws else None,
                    max((w.hcp95 for w in ws), default=None))


def steps(records: Sequence[Record], origin: float, end: float,
          lines: Sequence[HostTimeline], probe: Sequence[ProbeWindow],
          changed: Sequence[HostChange]) -> list[StepRow]:
    """Each step from its start record to the next one's (the last to the end of the
    observation). Like the judge, a step's measured span begins once its change was
    applied (its last outcome record), and only windows wholly inside it count."""
    starts = [(r.step, r.index, rel(r.t, origin))
              for r in records if isinstance(r, StepStartRecord)]
    applied = {r.step: rel(r.t, origin) for r in records
               if isinstance(r, OutcomeRecord) and r.step and r.t is not None}
    rows = []
    for i, (name, index, begin) in enumerate(starts):
        lo = max(begin, applied.get(name, begin))
        hi = starts[i + 1][2] if i + 1 < len(starts) else end
        pws = [w for w in probe if lo <= w.start < hi and w.messages > 0]
        settings = tuple((c.host, s.key, s.after) for c in changed if c.step == name
                         for s in c.sysctl)
        rows.append(StepRow(
            name=name, index=index, start=begin, end=hi, settings=settings,
            hosts=tuple(_step_host(tl, origin, lo, hi) for tl in lines),
            probe_messages=sum(w.messages for w in pws),
            probe_dwell_p99_ms=typical([w.dwell_ms.p99 for w in pws
                                       if w.dwell_ms.p99 is not None]),
            probe_cost_p95_bps=typical([w.is_bps.p95 for w in pws
                                       if w.is_bps.p95 is not None])))
    return rows


def key_metrics(records: Sequence[Record], lines: Sequence[HostTimeline]
                ) -> dict[str, dict[str, float | None]]:
    """The engine's own key metrics record; recomputed from the windows when the run
    ended before writing it."""
    for r in records:
        if isinstance(r, MetricsRecord):
            return {h: {k: None if v is None else float(v) for k, v in m.items()}
                    for h, m in r.metrics.items()}
    return {tl.host: {"ctr_max": max(w.ctr for w in tl.windows),
                      "nfd_per_s_max": max(w.nfd_per_s for w in tl.windows),
                      "hcp95_max": max(w.hcp95 for w in tl.windows)}
            for tl in lines if tl.windows}


def thresholds(spec: DrillSpec | None) -> dict[str, tuple[tuple[str, float], ...]]:
    if spec is None:
        return {}
    rg = spec.regime
    return {"ctr": (("tightening", rg.ctr_tightening_enter),
                    ("pressured", rg.ctr_pressured_enter)),
            "hcp95": (("tightening", float(rg.hcp95_tightening_enter)),)}
