"""The probe's windows on the report's axis, and its view of each regime (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from ctdrill.journal.payloads import ProbeResultJson
from ctdrill.journal.payloads import Quantiles as QuantilesJson
from ctdrill.metrics.quantile import nearest_rank
from ctdrill.report.model import REGIMES, HostTimeline, ProbeWindow, Quantiles, RegimeProbe
from ctdrill.report.timeline import regime_at, rel


def typical(values: Sequence[float]) -> float | None:
    """The typical window's value: the nearest-rank 50th percentile (the one quantile
    definition, metrics/quantile.py), a value some window actually had."""
    return nearest_rank(values, 0.5)


def _quantiles(q: QuantilesJson) -> Quantiles:
    return Quantiles(*(None if v is None else float(v) for v in (q.p50, q.p95, q.p99, q.max)))


def probe_windows(result: ProbeResultJson | None, origin: float,
                  lines: Sequence[HostTimeline]) -> list[ProbeWindow]:
    """Each probe window, labelled with the worst regime at its middle."""
    out = []
    for w in result.windows if result is not None else []:
        start = rel(w.start, origin)
        width = w.width or 1.0
        out.append(ProbeWindow(
            start=start, width=width, messages=w.messages, timeouts=w.timeouts,
            dwell_ms=_quantiles(w.dwell_ms), osd_ms=_quantiles(w.osd_ms),
            is_bps=_quantiles(w.is_bps), regime=regime_at(lines, start + width / 2)))
    return out


def _window_values(ws: Sequence[ProbeWindow], metric: str, q: str) -> list[float]:
    """One quantile (q) of one probe metric over windows, the windows that have it."""
    found = (getattr(getattr(w, metric), q) for w in ws)
    return [float(v) for v in found if v is not None]


def by_regime(windows: Sequence[ProbeWindow]) -> list[RegimeProbe]:
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
            dwell_p50_ms=typical(_window_values(ws, "dwell_ms", "p50")),
            dwell_p99_ms=typical(dwell99), dwell_worst_p99_ms=max(dwell99, default=None),
            osd_p50_ms=typical(_window_values(ws, "osd_ms", "p50")),
            osd_p99_ms=typical(osd99), osd_worst_p99_ms=max(osd99, default=None)))
    return rows
