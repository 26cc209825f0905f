"""The observation phase: loads and the probe at their start times, telemetry from every
observed host, the regime machine per host, guards, step changes, and the journal.

It returns everything the judge needs; the engine's `finally` still owns the revert.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ctdrill.engine.classcount import ClassCounter
from ctdrill.engine.journal import Journal
from ctdrill.engine.judge import ceiling_breach
from ctdrill.engine.load import LoadContext, LoadPhase, build_load
from ctdrill.engine.observer import Observer
from ctdrill.engine.signals import StopRequested, StopSignals
from ctdrill.errors import EnvironmentProblem
from ctdrill.metrics.conntrack import WindowMetrics
from ctdrill.probe.metrics import Message, PressureSample, is_proxy, label, quantile
from ctdrill.probe.phase import ProbePhase
from ctdrill.regime.machine import RegimeInput, RegimeMachine, Transition
from ctdrill.spec.models import ClassEntriesExpectation, DrillSpec
from ctdrill.targets.inventory import Inventory

StepHook = Callable[[int], None]


@dataclass
class StepSpan:
    name: str
    start: float
    end: float


@dataclass
class ObservationResult:
    started: float
    load_start: float | None = None
    history: dict[str, list[WindowMetrics]] = field(default_factory=dict)
    transitions: dict[str, list[Transition]] = field(default_factory=dict)
    final_regime: dict[str, str] = field(default_factory=dict)
    steps: list[StepSpan] = field(default_factory=list)
    loads: list[dict[str, Any]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    class_series: dict[tuple[str, str, int], list[tuple[float, int]]] = field(
        default_factory=dict)

    def pressure(self) -> list[PressureSample]:
        """The worst pressure across observed hosts at each window, in time order."""
        samples = [PressureSample(m.t, m.ctr, m.nfd_per_s)
                   for ms in self.history.values() for m in ms]
        return sorted(samples, key=lambda p: p.t)


class _LiveProbeSignals:
    """OSD and the CDT breach flag for the regime machine, refreshed at most every 0.25 s."""

    def __init__(self, probe: ProbePhase | None, result: ObservationResult) -> None:
        self.probe = probe
        self.result = result
        self.osd_ms = 0.0
        self.cdt_breach = False
        self._at = 0.0

    def refresh(self, now: float) -> None:
        if self.probe is None or now - self._at < 0.25:
            return
        self._at = now
        self.osd_ms = self.probe.live_osd_ms(now)
        spec = self.probe.spec
        msgs = self.probe.messages()
        pressure = self.result.pressure()
        low = [is_proxy(m, spec.drift, spec.timeout_s) for m in msgs
               if label(m.sent - 0.5, m.sent + 0.5, pressure, 0.9, 0.7) == "low"]
        recent = [m for m in msgs if now - m.sent <= spec.window_s + spec.timeout_s]
        costs = [is_proxy(m, spec.drift, spec.timeout_s) for m in recent]
        base, cur = quantile(low, 0.95), quantile(costs, 0.95)
        self.cdt_breach = (base is not None and cur is not None
                           and cur - base > spec.cdt_threshold_bps)


def observe(spec: DrillSpec, inv: Inventory, journal: Journal, sig: StopSignals,
            budget_deadline: float, progress: Callable[[str], None],
            apply_step: StepHook, load_ctx: LoadContext) -> ObservationResult:
    """Run the observation window; guards and signals raise StopRequested."""
    targets = inv.select(spec.observe.hosts or spec.targets.hosts)
    names = [t.name for t in targets]
    ceilings = [(c, {t.name for t in inv.select(c.hosts)}) for c in spec.guards.ceilings]
    phases: list[tuple[str, LoadPhase]] = [("load", build_load(spec.load, load_ctx))]
    probe = ProbePhase(spec.probe, inv, spec.observe.duration_s) if spec.probe else None
    if probe is not None:
        phases.append(("probe", probe))
    counter = ClassCounter([e for e in spec.expect if isinstance(e, ClassEntriesExpectation)],
                           inv)
    cfg = spec.regime.to_config()
    machines = {n: RegimeMachine(cfg) for n in names}
    result = ObservationResult(started=time.time())
    live = _LiveProbeSignals(probe, result)
    observer = Observer(targets, spec.observe.hz, spec.observe.window_s)
    step_starts = []
    offset = 0.0
    for st in spec.steps:
        step_starts.append(offset)
        offset += st.duration_s
    next_step = 0
    started: list[tuple[str, LoadPhase]] = []
    batches: dict[str, list[dict[str, Any]]] = {n: [] for n in names}

    def flush() -> None:
        for host, batch in batches.items():
            if batch:
                journal.write("samples", host=host, samples=batch)
                batches[host] = []

    progress(f"observing {', '.join(names)} for {spec.observe.duration_s:g} s")
    observer.start()
    counter.start()
    t0 = time.monotonic()
    last_flush = t0
    try:
        while (now := time.monotonic()) - t0 < spec.observe.duration_s:
            sig.checkpoint()
            if time.time() > budget_deadline:
                raise StopRequested("guard: time budget spent (guards.max_duration_s, or "
                                    "the dead-man TTL less 5 s)")
            if next_step < len(spec.steps) and now - t0 >= step_starts[next_step]:
                if result.steps:
                    result.steps[-1].end = time.time()
                st = spec.steps[next_step]
                progress(f"step {st.name}")
                journal.write("step_start", step=st.name, index=next_step)
                apply_step(next_step)
                result.steps.append(StepSpan(st.name, time.time(), float("inf")))
                next_step += 1
            for kind, phase in phases:
                if (kind, phase) not in started and now - t0 >= phase.start_s:
                    journal.write(f"{kind}_start", offset_s=now - t0)
                    if kind == "load":
                        result.load_start = time.time()
                    phase.start()
                    started.append((kind, phase))
            live.refresh(time.time())
            for obs in observer.poll(0.1):
                entry: dict[str, Any] = {"sample": obs.sample.to_json()}
                m = obs.metrics
                if m is not None:
                    entry["metrics"] = m.to_json()
                    tr = machines[obs.host].feed(RegimeInput.from_window(
                        m, osd_ms=live.osd_ms, cdt_breach=live.cdt_breach))
                    if tr is not None:
                        journal.write("transition", host=obs.host, **tr.to_json())
                        progress(f"{obs.host}: {tr.from_state.value} -> {tr.to_state.value}")
                    for ceiling, hosts in ceilings:
                        reason = ceiling_breach(ceiling, hosts, obs.host, m)
                        if reason:
                            raise StopRequested(reason)
                batches[obs.host].append(entry)
            if observer.ended >= set(names):
                raise EnvironmentProblem("telemetry from every observed host ended",
                                         "check the targets; the drill was reverted")
            if time.monotonic() - last_flush >= 1.0:
                flush()
                last_flush = time.monotonic()
    finally:
        if result.steps:
            result.steps[-1].end = time.time()
        for kind, phase in started:
            outcome = phase.stop()
            result.loads.append(outcome)
            journal.write(f"{kind}_end", result=outcome)
        counter.stop()
        observer.close()
        flush()
        result.history = observer.history
        result.transitions = {n: m.transitions for n, m in machines.items()}
        result.final_regime = {n: m.regime.value for n, m in machines.items()}
        result.class_series = counter.series
        if probe is not None:
            result.messages = probe.messages()
    return result
