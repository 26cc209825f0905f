"""Step 3, observe: the observation window, with the run's loads, probe, steps and guards.

Loads and the probe start at their start times, step changes apply when their step
begins (apply.apply_step), telemetry from every observed host feeds one regime machine
per host, guard ceilings and the time budget are checked, and the journal gets batches
of samples. Telemetry is watched, not trusted: a host whose stream stalls or ends is
journaled as `target_lost` at once; a guarded host lost, or every observed host lost,
aborts the run (the operator's interrupt, if there was one, is reported instead).
`observe` returns everything the judge needs (engine/observed.py), including each
sample's arrival time for coverage; the revert is not this step's: it runs after it on
every way out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ctdrill.connect.warm import WarmConnections
from ctdrill.engine.classcount import ClassCounter
from ctdrill.engine.coverage import CoveragePolicy
from ctdrill.engine.guards import ceiling_breach
from ctdrill.engine.load import build_load
from ctdrill.engine.load_context import LoadContext, LoadPhase
from ctdrill.engine.observed import ObservationResult, StepSpan
from ctdrill.engine.observer import Change, Observation, Observer, TargetLost
from ctdrill.engine.plan import refuse_unobserved_guards
from ctdrill.engine.signals import StopRequested, StopSignals
from ctdrill.errors import EnvironmentProblem
from ctdrill.journal import Journal
from ctdrill.journal.records import StepStartRecord, TargetResumedRecord
from ctdrill.lifecycle.apply import apply_step
from ctdrill.lifecycle.context import Progress, RunContext
from ctdrill.lifecycle.stepping import StepApplier
from ctdrill.metrics.quantile import nearest_rank
from ctdrill.probe.metrics import is_proxy, label
from ctdrill.probe.phase import ProbePhase
from ctdrill.probe.pool import ProbePool, build_probe
from ctdrill.regime.machine import RegimeInput, RegimeMachine
from ctdrill.spec.models import ClassEntriesExpectation, DrillSpec
from ctdrill.targets.inventory import Inventory
from ctdrill.targets.target import Target
from ctdrill.telemetry.streams import SampleStream, open_stream

StepHook = Callable[[int], None]


class _LiveProbeSignals:
    """OSD and the CDT breach flag for the regime machine, refreshed at most every 0.25 s.
    Over a pool, each lane's signals go to the gateway it crosses (its `via`), so a
    canary gateway's regime is not driven by a control lane's tails; a host without a
    lane (the kernel owner) gets the pool's worst."""

    def __init__(self, probe: ProbePhase | ProbePool | None,
                 result: ObservationResult) -> None:
        lanes = probe.lanes if isinstance(probe, ProbePool) else [probe] if probe else []
        self.lanes: list[ProbePhase] = lanes
        self.result = result
        self.osd: dict[str | None, float] = {}
        self.cdt: dict[str | None, bool] = {}
        self._at = 0.0

    def refresh(self, now: float) -> None:
        if not self.lanes or now - self._at < 0.25:
            return
        self._at = now
        pooled = len(self.lanes) > 1
        for lane in self.lanes:
            key = lane.via if pooled else None
            self.osd[key] = lane.live_osd_ms(now)
            self.cdt[key] = self._breach(lane, now, {lane.via} if pooled and lane.via else None)

    def _breach(self, lane: ProbePhase, now: float, hosts: set[str] | None) -> bool:
        spec = lane.spec
        msgs = lane.messages()
        pressure = self.result.pressure(hosts)
        low = [is_proxy(m, spec.drift, spec.timeout_s) for m in msgs
               if label(m.sent - 0.5, m.sent + 0.5, pressure, 0.9, 0.7) == "low"]
        recent = [m for m in msgs if now - m.sent <= spec.window_s + spec.timeout_s]
        costs = [is_proxy(m, spec.drift, spec.timeout_s) for m in recent]
        base, cur = nearest_rank(low, 0.95), nearest_rank(costs, 0.95)
        return base is not None and cur is not None and cur - base > spec.cdt_threshold_bps

    def for_host(self, host: str) -> tuple[float, bool]:
        """(OSD ms, CDT breach) that `host`'s regime machine sees."""
        for key in (host, None):
            if key in self.osd:
                return self.osd[key], self.cdt.get(key, False)
        return max(self.osd.values(), default=0.0), any(self.cdt.values())


def _lost_text(lost: TargetLost) -> str:
    if lost.why == "ended":
        return f"{lost.host}: telemetry ended"
    return f"{lost.host}: telemetry stalled (no sample for {lost.silent_s:.1f} s)"


def react_to_changes(changes: list[Change], observed: list[str],
                     lost: Mapping[str, TargetLost], guarded: set[str], journal: Journal,
                     sig: StopSignals, progress: Progress) -> list[dict[str, Any]]:
    """Journal each lost or resumed target; abort when a guarded host, or every observed
    host, is lost. The operator's interrupt is checked first: a Ctrl-C to the process
    group also kills local agents, and that must read as the interrupt, not as lost data.
    Returns the `target_lost` records written."""
    records = []
    for change in changes:
        if not isinstance(change, TargetLost):
            journal.emit(TargetResumedRecord(host=change.host,
                                             silent_s=round(change.silent_s, 3)))
            progress(f"{change.host}: telemetry resumed after {change.silent_s:.1f} s")
            continue
        sig.checkpoint()
        records.append(journal.write("target_lost", **change.to_json()))
        progress(_lost_text(change))
        if change.host in guarded:
            raise StopRequested(f"guard: {_lost_text(change)}; a guarded host must stay "
                                "observed")
    if changes and set(observed) <= set(lost):
        sig.checkpoint()
        raise EnvironmentProblem(
            "telemetry lost from every observed host ("
            + "; ".join(_lost_text(lost[h]) for h in observed) + ")",
            "check the targets and the links to them; the drill was reverted")
    return records


def _step_offsets(spec: DrillSpec) -> list[float]:
    offsets, at = [], 0.0
    for st in spec.steps:
        offsets.append(at)
        at += st.duration_s
    return offsets


class Window:
    """One observation window's moving parts; `run` is the loop, `_finish` the cleanup."""

    def __init__(self, spec: DrillSpec, inv: Inventory, journal: Journal, sig: StopSignals,
                 progress: Progress, apply_step: StepHook, load_ctx: LoadContext,
                 pools: dict[str, list[str]] | None = None,
                 warm: WarmConnections | None = None) -> None:
        self.spec, self.journal, self.sig = spec, journal, sig
        self.progress = progress
        self.stepper = StepApplier(apply_step)
        targets = observed_targets(spec, inv)
        self.names = [t.name for t in targets]
        refuse_unobserved_guards(spec, lambda p: [t.name for t in inv.select(p)])
        self.ceilings = [(c, {t.name for t in inv.select(c.hosts)})
                         for c in spec.guards.ceilings]
        self.guarded = {h for _, hosts in self.ceilings for h in hosts}
        self.phases: list[tuple[str, LoadPhase]] = [("load", build_load(spec.load, load_ctx))]
        self.probe = (build_probe(spec.probe, inv, spec.observe.duration_s)
                      if spec.probe else None)
        if self.probe is not None:
            self.phases.append(("probe", self.probe))
        self.counter = ClassCounter(
            [e for e in spec.expect if isinstance(e, ClassEntriesExpectation)], inv, pools)
        cfg = spec.regime.to_config()
        self.machines = {n: RegimeMachine(cfg) for n in self.names}
        self.result = ObservationResult(started=time.time(),
                                        coverage=CoveragePolicy.for_hz(spec.observe.hz),
                                        pools=pools or {})
        self.live = _LiveProbeSignals(self.probe, self.result)
        self.observer = Observer(targets, spec.observe.hz, spec.observe.window_s,
                                 opener=_opener(warm))
        self.step_starts = _step_offsets(spec)
        self.next_step = 0
        self.started: list[tuple[str, LoadPhase]] = []
        self.batches: dict[str, list[dict[str, Any]]] = {n: [] for n in self.names}
        self.span_start: float | None = None

    def run(self, budget_deadline: float) -> ObservationResult:
        self.progress(f"observing {', '.join(self.names)} for "
                      f"{self.spec.observe.duration_s:g} s")
        try:
            self.progress("preparing the load (channels, helper processes)")
            for _kind, phase in self.phases:  # channels open before the table can fill
                phase.prepare()
            self.observer.start()
            self.span_start = time.time()
            self.counter.start()
            t0 = time.monotonic()
            last_flush = t0
            while (now := time.monotonic()) - t0 < self.spec.observe.duration_s:
                self.sig.checkpoint()
                if time.time() > budget_deadline:
                    raise StopRequested("guard: time budget spent (guards.max_duration_s, "
                                        "or the dead-man TTL less 5 s)")
                self._due(now - t0)
                self.live.refresh(time.time())
                for obs in self.observer.poll(0.1):
                    self._feed(obs)
                self.result.lost += react_to_changes(
                    self.observer.changes(), self.names, self.observer.lost, self.guarded,
                    self.journal, self.sig, self.progress)
                if time.monotonic() - last_flush >= 1.0:
                    self._flush()
                    last_flush = time.monotonic()
        finally:
            self._finish()
        return self.result

    def _due(self, elapsed: float) -> None:
        """Start the step and the load phases whose time has come."""
        spec, result = self.spec, self.result
        self._step_in_place()
        if self.next_step < len(spec.steps) and elapsed >= self.step_starts[self.next_step]:
            self._step_in_place(wait=True)
            if result.steps:
                result.steps[-1].end = time.time()
            st = spec.steps[self.next_step]
            self.progress(f"step {st.name}")
            self.journal.emit(StepStartRecord(step=st.name, index=self.next_step))
            self.stepper.begin(self.next_step, st.name)
            self.next_step += 1
        for kind, phase in self.phases:
            if (kind, phase) not in self.started and elapsed >= phase.start_s:
                self.journal.write(f"{kind}_start", offset_s=elapsed)
                if kind == "load":
                    result.load_start = time.time()
                phase.start()
                self.started.append((kind, phase))

    def _step_in_place(self, wait: bool = False) -> None:
        """A step whose apply has ended opens its window now."""
        done = self.stepper.collect(wait)
        if done is not None:
            self.result.steps.append(StepSpan(done[0], done[1], float("inf")))

    def _feed(self, obs: Observation) -> None:
        entry: dict[str, Any] = {"sample": obs.sample.to_json()}
        m = obs.metrics
        if m is not None:
            entry["metrics"] = m.to_json()
            osd_ms, cdt_breach = self.live.for_host(obs.host)
            tr = self.machines[obs.host].feed(RegimeInput.from_window(
                m, osd_ms=osd_ms, cdt_breach=cdt_breach))
            if tr is not None:
                self.journal.write("transition", host=obs.host, **tr.to_json())
                self.progress(f"{obs.host}: {tr.from_state.value} -> {tr.to_state.value}")
            for ceiling, hosts in self.ceilings:
                reason = ceiling_breach(ceiling, hosts, obs.host, m)
                if reason:
                    raise StopRequested(reason)
        self.batches[obs.host].append(entry)

    def _flush(self) -> None:
        for host, batch in self.batches.items():
            if batch:
                self.journal.write("samples", host=host, samples=batch)
                self.batches[host] = []

    def _finish(self) -> None:
        result = self.result
        apply_error: BaseException | None = None
        try:
            self._step_in_place(wait=True)  # never leave an apply running into the revert
        except BaseException as exc:  # raised once everything below is cleaned up
            apply_error = exc
        end = time.time()
        if result.steps:
            result.steps[-1].end = end
        if self.span_start is not None:
            result.span = (self.span_start, end)
        for kind, phase in self.started:
            outcome = phase.stop()
            result.loads.append(outcome)
            self.journal.write(f"{kind}_end", result=outcome)
        for _kind, phase in self.phases:  # prepared but never started (stopped early)
            if not any(phase is p for _k, p in self.started):
                phase.stop()
        self.counter.stop()
        self.observer.close()
        self._flush()
        result.history = self.observer.history
        result.totals = self.observer.totals
        result.arrivals = self.observer.arrivals
        result.transitions = {n: m.transitions for n, m in self.machines.items()}
        result.final_regime = {n: m.regime.value for n, m in self.machines.items()}
        result.class_series = self.counter.series
        result.class_hosts = self.counter.scopes
        if self.probe is not None:
            result.messages = self.probe.messages()
        if apply_error is not None:
            raise apply_error


def observed_targets(spec: DrillSpec, inv: Inventory) -> list[Target]:
    """The hosts the window streams telemetry from."""
    return inv.select(spec.observe.hosts or spec.targets.hosts)


def _opener(warm: WarmConnections | None) -> Callable[[Target, float], SampleStream]:
    """Open a host's stream over its warm connection when there is one."""
    def open_one(target: Target, hz: float) -> SampleStream:
        return open_stream(target, hz, connector=warm.take(target.name) if warm else None)
    return open_one


def observe(ctx: RunContext) -> ObservationResult:
    """Run the observation window; guards, lost guarded hosts and signals raise
    StopRequested, losing every observed host raises EnvironmentProblem. Records the
    loads, transitions and final regimes in the outcome."""
    pools = ctx.resolved.pools
    window = Window(ctx.spec, ctx.inv, ctx.journal, ctx.sig, ctx.progress,
                    lambda index: apply_step(ctx, index), ctx.resolved.load_ctx,
                    {"canary": list(pools.canary), "control": list(pools.control)},
                    warm=ctx.warm)
    observed = window.run(ctx.budget.deadline)
    ctx.outcome.load = {"phases": observed.loads}
    ctx.outcome.transitions = {h: [tr.to_json() for tr in trs]
                               for h, trs in observed.transitions.items()}
    ctx.outcome.final_regime = observed.final_regime
    return observed
