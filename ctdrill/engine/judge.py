"""The judge: every kind of expectation against what the observation recorded (pure).

`judge(expectation, observed, spec) -> Verdict` is the lifecycle's judge step;
`key_metrics` gives the numbers a run summary leads with. Telemetry verdicts (metric,
regime, metric step trends) first ask whether the host's samples covered the
expectation's window (engine/coverage.py): below the required coverage the verdict
fails as "no data", whatever the few windows it has would say. Guards during the run
(ceilings) live in engine/guards.py.
"""

from __future__ import annotations

import itertools
import operator
import statistics
from collections.abc import Callable, Sequence

from ctdrill.engine.classscope import class_scope
from ctdrill.engine.coverage import coverage, percent
from ctdrill.engine.observed import ObservationResult, StepSpan
from ctdrill.engine.verdict import Verdict
from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.metrics.quantile import nearest_rank
from ctdrill.probe.metrics import Message, cdt, gaps, is_proxy, label
from ctdrill.probe.spec import ProbeSpec
from ctdrill.spec.models import (
    CanaryVsControlExpectation,
    ClassEntriesExpectation,
    DrillSpec,
    Expectation,
    MetricExpectation,
    ProbeExpectation,
    RegimeExpectation,
    StepTrendExpectation,
)

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq,
}


def statistic(values: Sequence[float], stat: str) -> float:
    """One statistic of a non-empty series; p95 is the nearest rank (metrics/quantile.py)."""
    if stat == "max":
        return max(values)
    if stat == "min":
        return min(values)
    if stat == "mean":
        return statistics.fmean(values)
    if stat == "last":
        return values[-1]
    if stat == "p95":
        value = nearest_rank(values, 0.95)
        if value is not None:
            return value
    raise ValueError(f"unknown statistic {stat}")


QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99, "max": 1.0}


def _step(result: ObservationResult, step: str) -> StepSpan | None:
    return next((s for s in result.steps if s.name == step), None)


def _span(result: ObservationResult, step: str | None) -> tuple[float, float]:
    """Bounds for selecting windows and messages: everything, or one step's."""
    if step is None:
        return float("-inf"), float("inf")
    span = _step(result, step)
    return (span.start, span.end) if span else (0.0, 0.0)


def coverage_window(result: ObservationResult, step: str | None) -> tuple[float, float]:
    """The window an expectation's samples must cover: the whole observation (from the
    moment every stream was open) or one step; empty if it never happened."""
    if step is None:
        return result.span or (result.started, result.started)
    span = _step(result, step)
    return (span.start, span.end) if span else (0.0, 0.0)


def host_coverage(result: ObservationResult, host: str, step: str | None) -> float:
    lo, hi = coverage_window(result, step)
    return coverage(result.arrivals.get(host, []), lo, hi, result.coverage.max_gap_s)


def _short(result: ObservationResult, cov: float) -> str | None:
    """The "no data" detail when coverage falls short of the requirement, else None."""
    need = result.coverage.required
    if cov >= need:
        return None
    return f"no data (coverage {percent(cov)}, needs {percent(need)})"


def _windows(result: ObservationResult, host: str, step: str | None) -> list[WindowMetrics]:
    """Windows lying wholly inside the step: a rate window straddling a step change
    would charge one step's drops to the next."""
    lo, hi = _span(result, step)
    return [w for w in result.history.get(host, []) if lo <= w.t - w.window_s and w.t < hi]


def metric_value(result: ObservationResult, host: str, metric: str, stat: str,
                 step: str | None) -> tuple[float | None, int]:
    ws = _windows(result, host, step)
    if not ws:
        return None, 0
    values = [float(getattr(w, metric)) for w in ws]
    if stat == "sum":
        return sum(values), len(values)
    if stat in ("p50", "p99"):
        q = nearest_rank(values, QUANTILES[stat])
        return q, len(values)
    return statistic(values, stat), len(values)


def _metric(e: MetricExpectation, result: ObservationResult) -> Verdict:
    value, n = metric_value(result, e.host, e.metric, e.stat, e.step)
    cov = host_coverage(result, e.host, e.step)
    where = f" in step {e.step}" if e.step else ""
    short = _short(result, cov)
    if short is not None:
        return Verdict(e.describe(), False, None,
                       f"{short}: {n} windows of {e.host}{where}")
    if value is None:
        return Verdict(e.describe(), False, None, f"no observations of {e.host}{where}")
    return Verdict(e.describe(), OPS[e.op](value, e.value), value,
                   f"{e.stat}({e.metric}) = {value:.4g} over {n} windows, "
                   f"coverage {percent(cov)}")


def _regime(e: RegimeExpectation, result: ObservationResult) -> Verdict:
    trs = result.transitions.get(e.host)
    if trs is None:
        return Verdict(e.describe(), False, None, f"{e.host} was not observed")
    entered = [t.to_state.value for t in trs]
    short = _short(result, host_coverage(result, e.host, None))
    if short is not None:
        return Verdict(e.describe(), False, None,
                       f"{short}; path {' -> '.join(['CT_HEALTHY', *entered])}")
    problems = []
    it = iter(entered)
    if e.sequence and not all(any(s == x for x in it) for s in e.sequence):
        problems.append(f"sequence {' -> '.join(e.sequence)} not seen")
    if e.reaches:
        hits = [t for t in trs if t.to_state.value == e.reaches]
        if not hits:
            problems.append(f"never reached {e.reaches}")
        elif e.within_s is not None:
            origin = result.load_start or result.started
            delay = hits[0].t - origin
            if delay > e.within_s:
                problems.append(f"reached {e.reaches} {delay:.1f}s after the load started")
    final = result.final_regime.get(e.host)
    if e.ends_in and final != e.ends_in:
        problems.append(f"ended in {final}")
    if e.max_transitions is not None and len(trs) > e.max_transitions:
        problems.append(f"{len(trs)} transitions (flapping)")
    path = " -> ".join(["CT_HEALTHY", *entered])
    return Verdict(e.describe(), not problems, float(len(trs)),
                   "; ".join(problems) + ("; " if problems else "") + f"path {path}")


def probe_messages(result: ObservationResult, proto: str, pressure: str,
                   step: str | None, pool: str = "all") -> list[Message]:
    """Messages of a class, a step, a pool (by the gateway they crossed) and a pressure
    (labelled by that pool's gateways only)."""
    lo, hi = _span(result, step)
    hosts = None if pool == "all" else set(result.pools.get(pool, []))
    msgs = [m for m in result.messages if lo <= m.sent < hi
            and (proto == "any" or m.proto == proto)
            and (hosts is None or m.via in hosts)]
    if pressure == "all":
        return msgs
    series = result.pressure(hosts)
    return [m for m in msgs
            if label(m.sent - 0.5, m.sent + 0.5 + (m.dwell or 0.0), series, 0.9, 0.7)
            == pressure]


def probe_value(msgs: Sequence[Message], metric: str, q: str, spec: ProbeSpec,
                result: ObservationResult) -> float | None:
    if metric == "messages":
        return float(len(msgs))
    if metric == "timeouts":
        return float(sum(m.timed_out for m in msgs))
    if metric == "retried":
        return float(sum(m.attempts > 1 for m in msgs))
    if metric == "lost_reports":
        return float(sum(m.lost_report for m in msgs))
    if metric.startswith("cdt"):
        c = cdt(msgs, result.pressure(), spec.drift, spec.timeout_s, spec.window_s)
        return c.p95_bps if metric == "cdt_p95_bps" else c.p99_bps
    if metric == "dwell_ms":
        values = [d * 1000 for m in msgs if (d := m.dwell) is not None]
    elif metric == "osd_ms":
        values = [o * 1000 for m in msgs if (o := m.osd) is not None]
    elif metric == "ack_gap_ms":
        values = [g * 1000 for g in gaps(m.acked for m in msgs
                                         if m.acked is not None and m.verb == "NEW")]
    else:  # is_bps
        values = [is_proxy(m, spec.drift, spec.timeout_s) for m in msgs]
    return nearest_rank(values, QUANTILES[q])


def _probe(e: ProbeExpectation, result: ObservationResult, spec: DrillSpec) -> Verdict:
    if spec.probe is None:
        return Verdict(e.describe(), False, None, "the drill runs no probe")
    msgs = probe_messages(result, e.proto, e.pressure, e.step, e.pool)
    value = probe_value(msgs, e.metric, e.quantile, spec.probe, result)
    if value is None:
        return Verdict(e.describe(), False, None, f"no data ({len(msgs)} messages)")
    return Verdict(e.describe(), OPS[e.op](value, e.value), value,
                   f"{e.metric} = {value:.4g} over {len(msgs)} messages")


def _class(e: ClassEntriesExpectation, result: ObservationResult) -> Verdict:
    """Holds when it holds on every counted host (one host, a group or a pool); the value
    shown is the first failing host's, else the one nearest the bound."""
    hosts = result.class_hosts.get(class_scope(e), [])
    per_host = {h: [float(n) for _, n in result.class_series.get((h, e.protocol, e.port), [])]
                for h in hosts}
    if not per_host or not all(per_host.values()):
        return Verdict(e.describe(), False, None, "no counts taken")
    values = {h: statistic(s, e.stat) for h, s in sorted(per_host.items())}
    failing = [(h, v) for h, v in values.items() if not OPS[e.op](v, e.value)]
    host, value = failing[0] if failing else min(values.items(),
                                                 key=lambda hv: abs(hv[1] - e.value))
    where = f" on {host}" if len(values) > 1 else ""
    counts = sum(len(s) for s in per_host.values())
    return Verdict(e.describe(), not failing, value,
                   f"{e.stat} = {value:g}{where} ({len(values)} host(s), {counts} counts)")


def _canary_vs_control(e: CanaryVsControlExpectation, result: ObservationResult,
                       spec: DrillSpec) -> Verdict:
    if spec.probe is None:
        return Verdict(e.describe(), False, None, "the drill runs no probe")
    values = {}
    for pool in ("canary", "control"):
        msgs = probe_messages(result, e.proto, e.pressure, None, pool)
        values[pool] = (probe_value(msgs, e.metric, e.quantile, spec.probe, result), len(msgs))
    (canary, n_canary), (control, n_control) = values["canary"], values["control"]
    shown = (f"canary {_num(canary)} over {n_canary} messages, control {_num(control)} "
             f"over {n_control}")
    if canary is None or control is None:
        return Verdict(e.describe(), False, None, f"no data: {shown}")
    return Verdict(e.describe(), OPS[e.op](canary, e.ratio * control), canary - control, shown)


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _trend(e: StepTrendExpectation, result: ObservationResult, spec: DrillSpec) -> Verdict:
    values: list[float | None] = []
    notes: list[str] = []
    for step in e.steps:
        note = ""
        if e.source == "metric":
            v, _ = metric_value(result, e.host or "", e.metric, e.stat, step)
            cov = host_coverage(result, e.host or "", step)
            if cov < result.coverage.required:
                v, note = None, f" (coverage {percent(cov)})"
        elif spec.probe is not None:
            v = probe_value(probe_messages(result, "any", "all", step), e.metric,
                            e.stat if e.stat in QUANTILES else "p95", spec.probe, result)
        else:
            v = None
        values.append(v)
        notes.append(note)
    shown = ", ".join(f"{s}={'n/a' if v is None else f'{v:.4g}'}{note}"
                      for s, v, note in zip(e.steps, values, notes, strict=True))
    if any(v is None for v in values):
        need = (f"; each step needs {percent(result.coverage.required)} coverage"
                if any(notes) else "")
        return Verdict(e.describe(), False, None, f"missing data: {shown}{need}")
    vs = [v for v in values if v is not None]
    ok = all(trend_holds(a, b, e) for a, b in itertools.pairwise(vs))
    floor = f"noise floor {e.tolerance:.0%}" + (f" or {e.abs_tolerance:g}"
                                                 if e.abs_tolerance else "")
    return Verdict(e.describe(), ok, vs[-1] - vs[0], f"{shown} ({floor})")


def trend_holds(before: float, after: float, e: StepTrendExpectation) -> bool:
    """One step of a trend, judged against the noise floor: values closer than the floor
    count as equal, so a non-strict trend tolerates them and a strict one rejects them."""
    floor = max(e.tolerance * max(abs(before), abs(after)), e.abs_tolerance)
    change = after - before if e.direction == "increasing" else before - after
    return change > floor if e.strict else change >= -floor


def judge(e: Expectation, result: ObservationResult, spec: DrillSpec) -> Verdict:
    if isinstance(e, MetricExpectation):
        return _metric(e, result)
    if isinstance(e, RegimeExpectation):
        return _regime(e, result)
    if isinstance(e, ProbeExpectation):
        return _probe(e, result, spec)
    if isinstance(e, ClassEntriesExpectation):
        return _class(e, result)
    if isinstance(e, CanaryVsControlExpectation):
        return _canary_vs_control(e, result, spec)
    return _trend(e, result, spec)


def key_metrics(result: ObservationResult, spec: DrillSpec) -> dict[str, dict[str, float | None]]:
    """The numbers a run summary leads with: per observed host, and the probe's."""
    out: dict[str, dict[str, float | None]] = {}
    for host, ws in result.history.items():
        if not ws:
            continue
        out[host] = {
            "ctr_max": max(w.ctr for w in ws),
            "nfd_per_s_max": max(w.nfd_per_s for w in ws),
            "hcp95_max": float(max(w.hcp95 for w in ws)),
            "drops": float(result.totals.get(host, {}).get("drops", 0)),
            "table_full_events": float(result.totals.get(host, {}).get(
                "table_full_events", 0)),
        }
    if spec.probe is not None and result.messages:
        msgs = result.messages
        probe = spec.probe
        c = cdt(msgs, result.pressure(), probe.drift, probe.timeout_s, probe.window_s)
        out["probe"] = {
            "messages": float(len(msgs)),
            "timeouts": float(sum(m.timed_out for m in msgs)),
            "dwell_ms_p50": probe_value(msgs, "dwell_ms", "p50", probe, result),
            "dwell_ms_p99": probe_value(msgs, "dwell_ms", "p99", probe, result),
            "osd_ms_p99": probe_value(msgs, "osd_ms", "p99", probe, result),
            "cdt_p95_bps": c.p95_bps,
            "cdt_p99_bps": c.p99_bps,
        }
    return out
