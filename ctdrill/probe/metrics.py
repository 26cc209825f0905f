"""Probe metrics (pure): latencies, gaps, dwell, bursts, OSD, the IS proxy and CDT.

Definitions (docs/PROBE.md has the prose):
- pending dwell: ack time - first send time (how long the client's order is pending);
- gaps: inter-arrival times of ACKs, FILLs and cancel ACKs, each stream separately;
- bursts: the most state-transition events (acks, fills) in any `burst_window_ms`;
- OSD (order state skew): how long the client's view of an order lagged the venue's
  ground truth: ack time - venue accept time (pending at the client, live at the
  venue) and, for fills, report receipt time - venue fill time (live at the client,
  filled at the venue; reports travel on new flows, so conntrack drops delay them);
- IS proxy (bps): DriftModel applied to the pending dwell, plus retry and timeout
  penalties;
- CDT: p95/p99 of the IS proxy over orders in high-pressure windows minus the same
  quantile over low-pressure windows of the same drill.

Every quantile is the nearest rank of ctdrill/metrics/quantile.py (docs/METRICS.md).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ctdrill.metrics.quantile import nearest_rank
from ctdrill.probe.spec import DriftModel

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


@dataclass(frozen=True)
class Message:
    """One probe message as the client saw it, joined with the venue's ground truth."""

    id: str
    verb: str
    proto: str
    sent: float
    acked: float | None
    filled: float | None
    attempts: int
    accepted: float | None  # venue ground truth; None if the venue never saw it
    fill_sent: float | None = None  # venue ground truth: when it filled the order
    via: str | None = None  # the gateway it crossed (the client's ctdrill_via), in a pool

    @property
    def lost_report(self) -> bool:
        """The venue filled the order but its report never reached the client."""
        return self.fill_sent is not None and self.filled is None

    @property
    def timed_out(self) -> bool:
        return self.acked is None

    @property
    def dwell(self) -> float | None:
        return None if self.acked is None else self.acked - self.sent

    @property
    def osd(self) -> float | None:
        skews = []
        if self.acked is not None and self.accepted is not None:
            skews.append(self.acked - self.accepted)
        if self.filled is not None and self.fill_sent is not None:
            skews.append(self.filled - self.fill_sent)
        return max(0.0, *skews) if skews else None


def join(client: Iterable[dict[str, Any]], venue: Iterable[dict[str, Any]]) -> list[Message]:
    """Join client messages with the venue's first accept of the same (id, verb), the
    venue's fill time and the client's first fill report receipt of the same id."""
    accepted: dict[tuple[str, str], float] = {}
    fill_sent: dict[str, float] = {}
    for v in venue:
        if v.get("ev") == "accept":
            accepted.setdefault((v["id"], v["verb"]), float(v["t"]))
        elif v.get("ev") == "fill":
            fill_sent.setdefault(v["id"], float(v["t"]))
    client = list(client)
    received: dict[str, float] = {}
    for c in client:
        if c.get("ev") == "fill":
            received.setdefault(c["id"], float(c["t"]))
    out = []
    for c in client:
        if c.get("ev") != "msg":
            continue
        new = c["verb"] == "NEW"
        out.append(Message(id=c["id"], verb=c["verb"], proto=c["proto"], sent=float(c["sent"]),
                           acked=c.get("acked"),
                           filled=received.get(c["id"]) if new else None,
                           attempts=int(c.get("attempts", 1)),
                           accepted=accepted.get((c["id"], c["verb"])),
                           fill_sent=fill_sent.get(c["id"]) if new else None))
    return sorted(out, key=lambda m: m.sent)


def gaps(times: Iterable[float]) -> list[float]:
    s = sorted(times)
    return [b - a for a, b in itertools.pairwise(s)]


def max_burst(times: Iterable[float], window_s: float) -> int:
    """Most events inside any window of `window_s` (two pointers over sorted times)."""
    s = sorted(times)
    best = lo = 0
    for hi, t in enumerate(s):
        while t - s[lo] > window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def is_proxy(m: Message, drift: DriftModel, timeout_s: float) -> float:
    """Implementation-shortfall proxy of one message in bps."""
    if m.acked is None:
        d = timeout_s * max(1, m.attempts)
        penalty = drift.timeout_penalty_bps
    else:
        d = m.acked - m.sent
        penalty = 0.0
    d = max(0.0, d)
    return (drift.mu_bps_per_s * d + drift.sigma_bps_per_sqrt_s * SQRT_2_OVER_PI * math.sqrt(d)
            + drift.retry_penalty_bps * max(0, m.attempts - 1) + penalty)


def _q(values: Sequence[float]) -> dict[str, float | None]:
    return {"p50": nearest_rank(values, 0.5), "p95": nearest_rank(values, 0.95),
            "p99": nearest_rank(values, 0.99), "max": max(values) if values else None}


@dataclass(frozen=True)
class ProbeWindow:
    """Probe metrics of the messages first sent inside [start, start + width)."""

    start: float
    width: float
    messages: int
    timeouts: int
    retried: int
    dwell_ms: dict[str, float | None]
    osd_ms: dict[str, float | None]
    ack_gap_ms: dict[str, float | None]
    fill_gap_ms: dict[str, float | None]
    cancel_gap_ms: dict[str, float | None]
    max_burst: int
    is_bps: dict[str, float | None]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _ms(values: Iterable[float]) -> list[float]:
    return [v * 1000 for v in values]


def window(msgs: Sequence[Message], start: float, width: float, drift: DriftModel,
           timeout_s: float, burst_window_s: float) -> ProbeWindow:
    inside = [m for m in msgs if start <= m.sent < start + width]
    acks = [m.acked for m in inside if m.acked is not None and m.verb == "NEW"]
    fills = [m.filled for m in inside if m.filled is not None]
    cancels = [m.acked for m in inside if m.acked is not None and m.verb != "NEW"]
    events = [t for m in inside for t in (m.acked, m.filled) if t is not None]
    return ProbeWindow(
        start=start, width=width, messages=len(inside),
        timeouts=sum(m.timed_out for m in inside),
        retried=sum(m.attempts > 1 for m in inside),
        dwell_ms=_q(_ms(d for m in inside if (d := m.dwell) is not None)),
        osd_ms=_q(_ms(o for m in inside if (o := m.osd) is not None)),
        ack_gap_ms=_q(_ms(gaps(acks))), fill_gap_ms=_q(_ms(gaps(fills))),
        cancel_gap_ms=_q(_ms(gaps(cancels))),
        max_burst=max_burst(events, burst_window_s),
        is_bps=_q([is_proxy(m, drift, timeout_s) for m in inside]),
    )


def windows(msgs: Sequence[Message], width: float, drift: DriftModel, timeout_s: float,
            burst_window_s: float) -> list[ProbeWindow]:
    if not msgs:
        return []
    t0 = msgs[0].sent
    n = int((msgs[-1].sent - t0) // width) + 1
    return [window(msgs, t0 + i * width, width, drift, timeout_s, burst_window_s)
            for i in range(n)]


@dataclass(frozen=True)
class PressureSample:
    """The gateway's pressure at a time, for labelling probe windows."""

    t: float
    ctr: float
    nfd_per_s: float


def label(start: float, end: float, pressure: Sequence[PressureSample], ctr_high: float,
          ctr_low: float) -> str | None:
    """'high' if any sample in [start, end) has CTR >= ctr_high or drops; 'low' if all are
    below ctr_low without drops; None (unmatched, excluded) otherwise or without samples."""
    times = [p.t for p in pressure]
    inside = pressure[bisect.bisect_left(times, start):bisect.bisect_left(times, end)]
    if not inside:
        return None
    if any(p.ctr >= ctr_high or p.nfd_per_s > 0 for p in inside):
        return "high"
    if all(p.ctr < ctr_low for p in inside):
        return "low"
    return None


@dataclass(frozen=True)
class Cdt:
    """Conntrack-attributable tail: IS quantiles under high minus under low pressure."""

    p95_bps: float | None
    p99_bps: float | None
    high_orders: int
    low_orders: int
    high_p95_bps: float | None
    low_p95_bps: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def cdt(msgs: Sequence[Message], pressure: Sequence[PressureSample], drift: DriftModel,
        timeout_s: float, window_s: float = 1.0, ctr_high: float = 0.9,
        ctr_low: float = 0.7) -> Cdt:
    """Label each message by the pressure of the window around its send time."""
    high: list[float] = []
    low: list[float] = []
    for m in msgs:
        end = m.sent + (m.dwell if m.dwell is not None else timeout_s)
        lab = label(m.sent - window_s / 2, max(end, m.sent + window_s / 2), pressure,
                    ctr_high, ctr_low)
        if lab == "high":
            high.append(is_proxy(m, drift, timeout_s))
        elif lab == "low":
            low.append(is_proxy(m, drift, timeout_s))

    def diff(q: float) -> float | None:
        h, lo = nearest_rank(high, q), nearest_rank(low, q)
        return None if h is None or lo is None else h - lo

    return Cdt(diff(0.95), diff(0.99), len(high), len(low), nearest_rank(high, 0.95),
               nearest_rank(low, 0.95))
