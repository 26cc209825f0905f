"""Rolling waves, the effectful loop: a rollout's waves applied one after another, the
guards checked between them (engine/waves.py decides; this module does).

The first wave's play arms every prepared host's dead-man switch (hosts of later waves
with nothing changed yet), so from then on a crash anywhere leaves each host able to
revert itself. One telemetry stream per watched host is opened before the first wave and
closed after the last check (the observation window opens its own, later); its windows
feed one regime machine per host and the checks, and each check is summed up in a
`wave_check` record (the samples are not journaled: they are not the observation's).

A tripped guard, a watched host whose telemetry is lost, the time budget or a signal
stops the rollout by raising StopRequested: no further wave is applied, and the run's
revert (lifecycle/revert.py, on every way out) puts back every host, verified; the
exit code is a guard's (lifecycle/policy.py: 3).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ctdrill.engine.observer import Observation, Observer, TargetLost
from ctdrill.engine.signals import StopRequested
from ctdrill.engine.waves import (
    RolloutOutcome,
    Tally,
    Trip,
    WaveGuards,
    plan_waves,
    settled,
    telemetry_trip,
    wave_vars,
)
from ctdrill.journal.records import (
    RolloutRecord,
    WaveAppliedRecord,
    WaveCheckRecord,
    WaveStartRecord,
)
from ctdrill.lifecycle.context import RunContext
from ctdrill.regime.machine import RegimeInput, RegimeMachine
from ctdrill.regime.states import Regime
from ctdrill.telemetry.streams import open_stream

ApplyWave = Callable[[dict[str, dict[str, Any]], int], None]
"""Apply one wave's play (apply.py's: intents, the play, outcomes, ApplyFailed);
called with the play's per-host vars and the wave's index (0 arms)."""


def guards_of(ctx: RunContext) -> WaveGuards:
    """The spec's guard ceilings with the hosts each selects, and the halt regime."""
    rollout = ctx.spec.rollout
    halt = rollout.halt_regime if rollout is not None else None
    return WaveGuards(
        [(c, frozenset(t.name for t in ctx.inv.select(c.hosts)))
         for c in ctx.spec.guards.ceilings],
        Regime(halt) if halt is not None else None)


def roll_out(ctx: RunContext, per_host: dict[str, dict[str, Any]],
             apply_wave: ApplyWave) -> None:
    """Apply the base changes wave by wave, checking the guards after each; raises
    StopRequested when one trips (the outcome says after which wave, which guard, where)."""
    rollout = ctx.spec.rollout
    assert rollout is not None, "roll_out needs a rollout"
    waves = plan_waves(rollout, ctx.prepared.base)
    guards = guards_of(ctx)
    watched = guards.watched([h for w in waves for h in w])
    state = RolloutOutcome(waves)
    ctx.outcome.rollout = state
    ctx.journal.emit(RolloutRecord(waves=[list(w) for w in waves], pause_s=rollout.pause_s,
                                   watched=watched, halt_regime=rollout.halt_regime))
    with WaveTelemetry(ctx, guards, watched) as telemetry:
        for index, wave in enumerate(waves):
            telemetry.stop_points()
            ctx.journal.emit(WaveStartRecord(index=index, hosts=list(wave)))
            ctx.progress(f"wave {index + 1} of {len(waves)}: applying on {', '.join(wave)}"
                         + (" (arming every host's dead-man switch)" if index == 0 else ""))
            t = ctx.budget.mono()
            apply_wave(wave_vars(per_host, waves, index), index)
            telemetry.applied(wave)
            state.applied.append(index)
            ctx.journal.emit(WaveAppliedRecord(index=index, hosts=list(wave),
                                               apply_s=round(ctx.budget.mono() - t, 3)))
            trip = telemetry.check(index)
            if trip is not None:
                state.stopped_after, state.trip = index, trip
                ctx.progress(f"wave {index + 1}: {trip.reason}; stopping the rollout")
                raise StopRequested(f"{trip.reason} (rollout stopped after wave "
                                    f"{index + 1} of {len(waves)})")


class WaveTelemetry:
    """The rollout's telemetry: streams, regime machines, and one check per wave."""

    def __init__(self, ctx: RunContext, guards: WaveGuards, watched: list[str]) -> None:
        spec = ctx.spec
        assert spec.rollout is not None
        self.ctx, self.guards, self.pause_s = ctx, guards, spec.rollout.pause_s
        self.watched = watched
        self.observer = Observer([ctx.inv.target(h) for h in watched], spec.observe.hz,
                                 spec.observe.window_s, opener=open_stream)
        cfg = spec.regime.to_config()
        self.machines = {h: RegimeMachine(cfg) for h in watched}
        self.applied_at: dict[str, float] = {}
        """Each changed host -> when its wave's play ended (the clock Sample.received uses)."""
        self.metrics = tuple(sorted({c.metric for c, _on in guards.ceilings}))

    def __enter__(self) -> WaveTelemetry:
        self.observer.start()
        return self

    def __exit__(self, _t: type[BaseException] | None, _e: BaseException | None,
                 _tb: TracebackType | None) -> None:
        self.observer.close()

    def stop_points(self) -> None:
        """The operator's stop and the run's time budget, checked before each wave and
        while a check waits."""
        self.ctx.sig.checkpoint()
        if self.ctx.budget.wall() > self.ctx.budget.deadline:
            raise StopRequested("guard: time budget spent during the rollout "
                                "(guards.max_duration_s, or the dead-man TTL less the "
                                "revert's budget)")

    def applied(self, hosts: tuple[str, ...]) -> None:
        now = time.time()
        for host in hosts:
            self.applied_at[host] = now

    def check(self, index: int) -> Trip | None:
        """Read the watched hosts until the wave has settled or a guard trips; journal
        what was seen. Windows that arrived during the play are read here too."""
        since = time.time()
        checked = [h for h in self.watched if h in self.applied_at]
        tally = Tally(self.metrics)
        fresh: set[str] = set()
        t0 = self.ctx.budget.mono()
        trip: Trip | None = None
        while trip is None:
            self.stop_points()
            if settled(self.ctx.budget.mono() - t0, self.pause_s, fresh, checked):
                break
            trip = self._poll(since, tally, fresh)
        self.ctx.journal.emit(WaveCheckRecord(
            index=index, hosts=checked, passed=trip is None,
            settle_s=round(self.ctx.budget.mono() - t0, 3), windows=tally.windows,
            peaks=tally.peaks, regimes={h: self.machines[h].regime.value for h in checked},
            **({} if trip is None else trip.to_json())))
        return trip

    def _poll(self, since: float, tally: Tally, fresh: set[str]) -> Trip | None:
        """One poll of the streams: the first guard a window trips, or a lost host."""
        for obs in self.observer.poll(0.1):
            trip = self._feed(obs, since, tally, fresh)
            if trip is not None:
                return trip
        for change in self.observer.changes():
            if isinstance(change, TargetLost):
                return telemetry_trip(change.host, change.why)
        return None

    def _feed(self, obs: Observation, since: float, tally: Tally,
              fresh: set[str]) -> Trip | None:
        m = obs.metrics
        if m is None:
            return None
        machine = self.machines[obs.host]
        machine.feed(RegimeInput.from_window(m))
        received, at = obs.sample.received, self.applied_at.get(obs.host)
        if at is None or received < at:
            return None  # not changed yet, or a window from before its wave
        tally.add(obs.host, m)
        if received >= since:
            fresh.add(obs.host)
        return (self.guards.window(obs.host, m, received, self.applied_at)
                or self.guards.regime(obs.host, machine.regime, self.applied_at))
