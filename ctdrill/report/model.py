"""The report model: everything a drill report shows, derived from the journal alone.

Frozen dataclasses, no I/O. `build.build_report` makes one from the typed journal
records (ctdrill/journal/records.py) and every renderer (HTML, Markdown, JUnit,
Prometheus) reads only this, so the four outputs cannot disagree about a run.

Times are seconds since the observation started (`Report.origin`, epoch seconds), so
charts, transitions, steps and probe windows share one axis.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["passed", "failed", "refused", "aborted", "revert_failed", "incomplete"]

REGIMES: tuple[str, ...] = ("CT_HEALTHY", "CT_TIGHTENING", "CT_PRESSURED", "CT_SAFE_CONTAIN")


def regime_level(regime: str) -> int:
    """Severity of a regime name (unknown names rank lowest), to pick the worst of hosts."""
    return REGIMES.index(regime) if regime in REGIMES else -1


def utc_text(t: float | None, fmt: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    """A journal time as UTC text; an impossible time (a corrupt record) as ''."""
    if t is None:
        return ""
    try:
        return time.strftime(fmt, time.gmtime(t))
    except (OverflowError, ValueError, OSError):
        return ""


@dataclass(frozen=True)
class Window:
    """One telemetry window of one host (the metrics the regime machine read)."""

    t: float
    ctr: float
    hcp95: float
    nfd_per_s: float
    new_flows_per_s: float
    count: int
    max: int
    buckets: int
    window_s: float


@dataclass(frozen=True)
class Band:
    """A span of time one host spent in one regime."""

    start: float
    end: float
    regime: str


@dataclass(frozen=True)
class TransitionRow:
    """A regime transition with its cause and the control advice it carries."""

    host: str
    t: float
    from_state: str
    to_state: str
    signal: str
    threshold: float | None
    value: float | None
    detail: str
    advice: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class SlabPoint:
    """The kernel's conntrack slab cache at one sample of one host (kernel-wide: hosts
    on one kernel read the same cache). `bytes` = objects x object_size."""

    t: float
    objects: int
    """num_objs: object slots the cache holds (in use or free inside its slabs)."""
    active_objects: int
    object_size: int
    bytes: int


@dataclass(frozen=True)
class SlabSummary:
    """A host's conntrack slab cache over the run: the last sample and the maxima."""

    samples: int
    objects_last: int
    objects_max: int
    active_objects_last: int
    bytes_last: int
    bytes_max: int
    object_size: int

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class HostTimeline:
    """What the charts draw for one observed host."""

    host: str
    windows: tuple[Window, ...]
    bands: tuple[Band, ...]
    final_regime: str | None
    slab: tuple[SlabPoint, ...] = ()
    """The conntrack slab cache per sample; empty when the agent could not read it."""

    def slab_summary(self) -> SlabSummary | None:
        """Last and maximum of the slab cache, None without slab samples."""
        if not self.slab:
            return None
        last = self.slab[-1]
        return SlabSummary(
            samples=len(self.slab), objects_last=last.objects,
            objects_max=max(p.objects for p in self.slab),
            active_objects_last=last.active_objects, bytes_last=last.bytes,
            bytes_max=max(p.bytes for p in self.slab), object_size=last.object_size)


@dataclass(frozen=True)
class RatePhase:
    """A surge phase's achieved mean rate over its span (from the load result)."""

    name: str
    start: float
    end: float
    rate: float
    requested: float | None
    flows: int


@dataclass(frozen=True)
class SurgeProfile:
    """The load's shape: requested (from the spec) and achieved (from the result).

    `requested` is polyline vertices [(t, rate)] (a step is two vertices at one t),
    empty when the shape has no pacing (max) or the replayed profile was not available.
    """

    kind: str
    shape: str
    requested: tuple[tuple[float, float], ...]
    achieved: tuple[RatePhase, ...]
    note: str
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Quantiles:
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


@dataclass(frozen=True)
class ProbeWindow:
    """One probe window (messages first sent in [start, start + width))."""

    start: float
    width: float
    messages: int
    timeouts: int
    dwell_ms: Quantiles
    osd_ms: Quantiles
    is_bps: Quantiles
    regime: str | None


@dataclass(frozen=True)
class RegimeProbe:
    """The probe's view of one regime: its windows' quantiles, summarised.

    The journal keeps per-window quantiles, not messages, so the summary is over
    windows: the typical (nearest-rank median, metrics/quantile.py) window's p50 and
    p99, and the worst window's p99.
    """

    regime: str
    windows: int
    messages: int
    timeouts: int
    dwell_p50_ms: float | None
    dwell_p99_ms: float | None
    dwell_worst_p99_ms: float | None
    osd_p50_ms: float | None
    osd_p99_ms: float | None
    osd_worst_p99_ms: float | None


@dataclass(frozen=True)
class StepHost:
    """One host's metrics inside one capacity step (windows wholly inside the step)."""

    host: str
    windows: int
    ctr_mean: float | None
    ctr_max: float | None
    nfd_mean: float | None
    hcp95_max: float | None


@dataclass(frozen=True)
class StepRow:
    """One step of a stepped drill: what it set, what the hosts and the probe showed."""

    name: str
    index: int
    start: float
    end: float
    settings: tuple[tuple[str, str, str], ...]
    """(host, key, value) the step applied."""
    hosts: tuple[StepHost, ...]
    probe_messages: int
    probe_dwell_p99_ms: float | None
    """Nearest-rank median over the step's probe windows of each window's p99 ack dwell."""
    probe_cost_p95_bps: float | None
    """Nearest-rank median over the step's probe windows of each window's p95 IS cost
    proxy."""


@dataclass(frozen=True)
class ExpectationRow:
    """A verdict; `passed` is None for an expectation the run never judged."""

    name: str
    passed: bool | None
    observed: float | None
    detail: str


@dataclass(frozen=True)
class SysctlChange:
    key: str
    before: str | None
    after: str


@dataclass(frozen=True)
class HostChange:
    """What the drill changed on one host (the plan's before -> after)."""

    host: str
    kernel_owner: bool
    step: str | None
    sysctl: tuple[SysctlChange, ...]
    nft_table: str | None
    nft_rules: str | None


@dataclass(frozen=True)
class RevertRow:
    """The latest revert of one host (a later `ctdrill revert` supersedes the run's)."""

    host: str
    verified: bool
    restored: tuple[tuple[str, str, str], ...]
    """(key, value found, value restored)."""
    deleted: tuple[str, ...]
    problems: tuple[str, ...]
    source: str
    deadman: str


@dataclass(frozen=True)
class Report:
    """One drill run, ready to render."""

    run_id: str
    drill: str
    description: str
    spec_path: str
    journal: str
    inventory: str
    orchestrator: str
    started_at: float
    ended_at: float | None
    origin: float
    duration_s: float
    status: Status
    exit_code: int | None
    reason: str | None
    aborted: str | None
    """Why the run stopped before judging (an abort or refusal record), else None."""
    observed_s: float
    timelines: tuple[HostTimeline, ...]
    transitions: tuple[TransitionRow, ...]
    surge: SurgeProfile | None
    probe_host: str | None
    probe_windows: tuple[ProbeWindow, ...]
    probe_by_regime: tuple[RegimeProbe, ...]
    probe_summary: dict[str, Any]
    steps: tuple[StepRow, ...]
    expectations: tuple[ExpectationRow, ...]
    changes: tuple[HostChange, ...]
    reverts: tuple[RevertRow, ...]
    revert_expected: bool
    """Whether the run changed (or may have changed) anything, so a revert must exist."""
    recovered: bool
    key_metrics: dict[str, dict[str, float | None]]
    thresholds: dict[str, tuple[tuple[str, float], ...]]
    """Per metric, the regime enter thresholds drawn as reference lines."""
    timings: dict[str, float]
    problems: tuple[str, ...]
    """Things the report could not show, said plainly (e.g. a replay profile not found)."""
    revert_hosts: tuple[str, ...] = ()
    """Hosts the run planned to change (a revert_plan record each): each must be reverted."""

    @property
    def passed(self) -> bool:
        """Passed on the evidence, not on the exit code alone: the run ended as passed,
        every expectation was judged and met, and whatever it changed is verified back."""
        return (self.status == "passed" and all(e.passed is True for e in self.expectations)
                and self.revert_verified is not False)

    def revert_by_host(self) -> dict[str, bool]:
        """Every host the run changed or reverted -> verified; a planned host with no
        revert record (a run that crashed after changing it) is False, never absent."""
        found = {h: False for h in self.revert_hosts}
        found.update((r.host, r.verified) for r in self.reverts)
        return dict(sorted(found.items()))

    @property
    def revert_verified(self) -> bool | None:
        """True/False for a run that had something to revert; None when it changed nothing."""
        if not self.revert_expected and not self.reverts:
            return None
        by_host = self.revert_by_host()
        return bool(by_host) and all(by_host.values())

    def slab_by_host(self) -> dict[str, SlabSummary]:
        """Each observed host's conntrack slab summary (hosts without slab samples left out)."""
        return {tl.host: s for tl in self.timelines if (s := tl.slab_summary()) is not None}

    def counts(self) -> dict[str, int]:
        """Expectations passed / failed / not judged."""
        return {
            "passed": sum(e.passed is True for e in self.expectations),
            "failed": sum(e.passed is False for e in self.expectations),
            "not_judged": sum(e.passed is None for e in self.expectations),
        }

    def summary_json(self) -> dict[str, Any]:
        """The small machine-readable summary `ctdrill report --json` prints."""
        return {
            "run_id": self.run_id, "drill": self.drill, "status": self.status,
            "exit_code": self.exit_code, "reason": self.reason,
            "expectations": [{"name": e.name, "passed": e.passed, "observed": e.observed,
                              "detail": e.detail} for e in self.expectations],
            "revert_verified": self.revert_verified,
            "transitions": [{"host": t.host, "t": round(t.t, 3), "from": t.from_state,
                             "to": t.to_state, "signal": t.signal} for t in self.transitions],
            "metrics": self.key_metrics,
            "slab": {h: s.to_json() for h, s in self.slab_by_host().items()},
            "problems": list(self.problems),
        }
