"""Rolling waves in the composed lifecycle (lifecycle/run.py -> apply.py -> waves.py) over
fake hosts (tests/unit/lifecycle_fakes.FakeOps) and fake telemetry whose conntrack count
follows each host's live sysctls, so a guard trips because of what a wave changed.

A guard that trips stops the rollout: no later wave is applied, every host is reverted,
the exit code is a guard's (3), and the journal and the outcome say which waves were
applied, which guard tripped and where. Telemetry is synchronous (one window per host per
poll) and the run's monotonic clock is a counter: nothing waits on wall time."""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from ctdrill.ansible.runner import RunResult
from ctdrill.engine.hostops import HostOps
from ctdrill.engine.observed import ObservationResult
from ctdrill.engine.observer import Change, Observation, TargetLost
from ctdrill.engine.recover import recovery_plan
from ctdrill.errors import ExitCode
from ctdrill.journal import read_journal, read_records
from ctdrill.lifecycle import observe as observe_mod
from ctdrill.lifecycle import waves as waves_mod
from ctdrill.lifecycle.context import Budget, RunContext
from ctdrill.lifecycle.outcome import DrillOutcome
from ctdrill.lifecycle.prepare import open_run
from ctdrill.lifecycle.run import execute
from ctdrill.metrics.window import SlidingWindow
from ctdrill.report import build_report
from ctdrill.spec.models import DrillSpec
from ctdrill.targets.target import Target
from ctdrill.telemetry.protocol import Sample
from tests.unit.lifecycle_fakes import UDP, FakeOps, Script

GWS = ["gw01", "gw02", "gw03", "gw04"]
INVENTORY = "all:\n  children:\n    gateways:\n      hosts:\n" + "".join(
    f"        {h}: {{ansible_connection: local, ctdrill_netns: ctdt-{h}}}\n" for h in GWS) + (
    "    venues:\n      hosts:\n        venue: {ansible_connection: local, "
    "ctdrill_netns: ctdt-venue}\n")
CHANGED = "10"
"""The drill's change: the UDP timeout (30 before)."""
COUNT_CEILING = {"hosts": "gateways", "metric": "count", "above": 50}


def spec(rollout: dict[str, Any], ceilings: list[dict[str, Any]] | None = None,
         **kw: Any) -> DrillSpec:
    return DrillSpec.model_validate({
        "drill": "waves", "targets": {"hosts": "gateways"},
        "changes": [{"sysctl": {UDP: int(CHANGED)}}], "rollout": rollout,
        "guards": {"ceilings": [COUNT_CEILING] if ceilings is None else ceilings},
        "observe": {"duration_s": 1}, "revert": {"ttl_s": 60}} | kw)


class PlayOps(FakeOps):
    """FakeOps that remembers each play (armed or not, each host's sysctls) and can
    fail one of them."""

    plays: list[tuple[bool, dict[str, dict[str, str]]]]
    fail_play: int | None = None

    def apply(self, per_host: dict[str, dict[str, Any]], ttl_s: float,
              expected: dict[str, dict[str, Any]], arm: bool = True,
              check_keys: list[str] | None = None) -> RunResult:
        self.plays.append((arm, {h: dict(hv["sysctl"]) for h, hv in per_host.items()}))
        self.script.apply_fails = len(self.plays) - 1 == self.fail_play
        return super().apply(per_host, ttl_s, expected, arm, check_keys)


class Telemetry:
    """Fake telemetry for the rollout: each poll gives every watched host one sample
    whose count is `count(host, live sysctls)`; `lose` names a host whose stream stalls
    at the first poll; `on_poll` runs first (a signal, a clock jump)."""

    def __init__(self, script: Script, count: Callable[[str, dict[str, str]], int]) -> None:
        self.script, self.count = script, count
        self.lose: str | None = None
        self.on_poll: Callable[[], None] = lambda: None
        self.hosts: list[str] = []
        self.closed = False

    def observer(self, targets: list[Target], hz: float, window_s: float,
                 **_kw: Any) -> Telemetry:
        self.hosts = [t.name for t in targets]
        self.windows = {h: SlidingWindow(window_s) for h in self.hosts}
        self.t = itertools.count(1)
        return self

    def start(self) -> None:
        pass

    def poll(self, timeout: float = 0.1) -> list[Observation]:
        self.on_poll()
        t = next(self.t) * 0.5
        out = []
        for h in self.hosts:
            s = Sample(seq=int(t * 2), t=t, received=time.time(),
                       count=self.count(h, self.script.host(h)), max=1000, buckets=64)
            out.append(Observation(h, s, self.windows[h].push(s)))
        return out

    def changes(self) -> list[Change]:
        lost, self.lose = self.lose, None
        return [TargetLost(lost, "stalled", None, 2.0)] if lost else []

    def close(self) -> None:
        self.closed = True


def hot_on(host: str, count: int = 200) -> Callable[[str, dict[str, str]], int]:
    """`count` entries on `host` once the drill's change is on it; 5 anywhere else."""
    return lambda h, live: count if h == host and live[UDP] == CHANGED else 5


class Run:
    """One run over four fake gateways; `go()` executes it."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drill: DrillSpec,
                 count: Callable[[str, dict[str, str]], int] = hot_on("none")) -> None:
        self.script = Script()
        self.telemetry = Telemetry(self.script, count)
        self.plays: list[tuple[bool, dict[str, dict[str, str]]]] = []
        self.fail_play: int | None = None
        monkeypatch.setattr(waves_mod, "Observer", self.telemetry.observer)
        monkeypatch.setattr(observe_mod, "Window", self._window)
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(INVENTORY)
        self.ctx: RunContext = open_run(drill, inventory, runs_dir=tmp_path / "runs",
                                        ops_factory=self._ops)
        mono = itertools.count()
        self.wall = 1000.0
        self.ctx.budget = Budget.start(drill.guards.max_duration_s, wall=lambda: self.wall,
                                       mono=lambda: next(mono) * 0.25)

    def _ops(self, inv: Path, run_id: str, timeout_s: int) -> HostOps:
        ops = PlayOps(self.script, inv, run_id, timeout_s)
        ops.plays = self.plays
        return cast(HostOps, ops)

    def _window(self, *_args: Any, **_kw: Any) -> Any:
        script = self.script

        class Window:
            def run(self, budget_deadline: float) -> ObservationResult:
                script.calls.append("observe")
                return ObservationResult(started=0.0)
        return Window()

    def go(self) -> DrillOutcome:
        cast(PlayOps, self.ctx.ops).fail_play = self.fail_play
        return execute(self.ctx)

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        recs = read_journal(self.ctx.journal.path)
        return [r for r in recs if kind is None or r["type"] == kind]


def sysctls(changed: list[str]) -> dict[str, dict[str, str]]:
    return {h: {UDP: CHANGED} if h in changed else {} for h in GWS}


def assert_all_reverted(run: Run) -> None:
    reverts = {r["host"]: r for r in run.records("revert")}
    assert sorted(reverts) == GWS and all(r["verified"] for r in reverts.values())
    assert all(run.script.host(h)[UDP] == "30" for h in GWS)
    assert run.telemetry.closed


def test_a_guard_tripped_by_the_second_wave_stops_the_rollout_and_reverts_every_wave(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, monkeypatch, spec({"serial": 1}), hot_on("gw02"))
    out = run.go()
    reason = "guard: count on gw02 is 200 > 50 (rollout stopped after wave 2 of 4)"
    assert (out.exit_code, out.reason) == (ExitCode.ABORTED, reason)
    # wave 1 armed every host and changed gw01; wave 2 changed gw02; nothing after
    assert run.plays == [(True, sysctls(["gw01"])), (False, {"gw02": {UDP: CHANGED}})]
    assert run.script.calls == ["prepare", "apply", "apply_step", "revert"]
    assert [r["index"] for r in run.records("wave_start")] == [0, 1]
    assert [r["index"] for r in run.records("wave_applied")] == [0, 1]
    first, second = run.records("wave_check")
    assert (first["passed"], first["hosts"], first["peaks"]) == (
        True, ["gw01"], {"gw01": {"count": 5}})
    assert (second["passed"], second["hosts"], second["host"], second["guard"]) == (
        False, ["gw01", "gw02"], "gw02", "ceiling count > 50")
    assert second["peaks"]["gw02"] == {"count": 200}
    changed = {r["host"] for r in run.records("outcome") if r.get("name")}
    assert changed == {"gw01", "gw02"}
    assert not run.records("applied_check") and "observe" not in run.script.calls
    assert [r["reason"] for r in run.records("abort")] == [reason]
    assert_all_reverted(run)
    assert out.rollout is not None and out.to_json()["rollout"] == {
        "waves": [[h] for h in GWS], "applied": [0, 1],
        "stopped": {"wave": 1, "guard": "ceiling count > 50", "host": "gw02",
                    "reason": "guard: count on gw02 is 200 > 50"}}
    kinds = [r.kind for r in read_records(run.ctx.journal.path)]
    assert kinds[-1] == "end" and kinds.index("rollout") < kinds.index("intent")


def test_a_rollout_whose_guards_hold_applies_every_wave_then_observes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, monkeypatch, spec({"serial": [1, "50%"]}))
    out = run.go()
    assert (out.exit_code, out.reason) == (ExitCode.OK, None)
    assert run.plays == [(True, sysctls(["gw01"])),
                         (False, {h: {UDP: CHANGED} for h in ("gw02", "gw03")}),
                         (False, {"gw04": {UDP: CHANGED}})]
    assert run.script.calls == ["prepare", "apply", "apply_step", "apply_step",
                                "observe", "revert"]
    checks = run.records("wave_check")
    assert [(c["index"], c["passed"], c["hosts"]) for c in checks] == [
        (0, True, ["gw01"]), (1, True, ["gw01", "gw02", "gw03"]), (2, True, GWS)]
    assert all(set(c["windows"]) == set(c["hosts"]) for c in checks)
    kinds = [r["type"] for r in run.records()]
    assert kinds.index("wave_check") < kinds.index("applied_check")  # checked once, at the end
    assert [r.get("wave") for r in run.records("intent")] == [0, 0, 0, 0, 1, 1, 2]
    assert out.to_json()["rollout"]["applied"] == [0, 1, 2]
    assert out.to_json()["rollout"]["stopped"] is None
    assert_all_reverted(run)


def test_without_a_rollout_nothing_about_waves_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drill = spec({"serial": 1}).model_copy(update={"rollout": None})
    run = Run(tmp_path, monkeypatch, drill)
    out = run.go()
    assert out.exit_code == ExitCode.OK and out.rollout is None
    assert run.plays == [(True, sysctls(GWS))]
    assert not any(r["type"].startswith(("wave", "rollout")) or "wave" in r
                   for r in run.records())


def test_the_halt_regime_stops_the_rollout_where_a_host_enters_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drill = spec({"serial": 1, "pause_s": 3, "halt_regime": "CT_TIGHTENING"}, ceilings=[])
    run = Run(tmp_path, monkeypatch, drill, hot_on("gw03", count=800))  # ctr 0.8
    out = run.go()
    assert out.exit_code == ExitCode.ABORTED
    assert out.reason == ("guard: gw03 is in CT_TIGHTENING (rollout.halt_regime "
                          "CT_TIGHTENING) (rollout stopped after wave 3 of 4)")
    rollout = run.records("rollout")[0]
    assert rollout["watched"] == GWS and rollout["halt_regime"] == "CT_TIGHTENING"
    checks = run.records("wave_check")
    assert [c["passed"] for c in checks] == [True, True, False]
    assert checks[0]["settle_s"] >= 3 and checks[0]["windows"]["gw01"] >= 2
    assert checks[2]["regimes"]["gw03"] == "CT_TIGHTENING"
    assert checks[2]["guard"] == "regime >= CT_TIGHTENING"
    assert len(run.plays) == 3
    assert_all_reverted(run)


def test_a_watched_host_whose_telemetry_is_lost_stops_the_rollout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, monkeypatch, spec({"serial": 2}))
    run.telemetry.lose = "gw01"
    out = run.go()
    assert out.exit_code == ExitCode.ABORTED and out.reason is not None
    assert out.reason.startswith("guard: gw01: telemetry stalled during the rollout")
    assert [c["guard"] for c in run.records("wave_check")] == ["telemetry"]
    assert len(run.plays) == 1
    assert_all_reverted(run)


def test_a_failed_wave_stops_the_rollout_and_reverts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, monkeypatch, spec({"serial": 1}))
    run.fail_play = 1
    out = run.go()
    assert out.exit_code == ExitCode.ABORTED
    assert out.reason == "apply failed on gw02: sysctl: boom"
    assert [r["index"] for r in run.records("wave_start")] == [0, 1]
    assert [r["index"] for r in run.records("wave_applied")] == [0]
    assert out.to_json()["rollout"]["applied"] == [0] and len(run.plays) == 2
    assert_all_reverted(run)


def test_a_signal_during_a_check_stops_the_rollout_as_the_operators(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, monkeypatch, spec({"serial": 1, "pause_s": 1}))
    run.telemetry.on_poll = lambda: run.ctx.sig.handle(signal.SIGINT, None)
    out = run.go()
    assert (out.exit_code, out.reason) == (ExitCode.ABORTED, "interrupted by SIGINT (Ctrl-C)")
    assert len(run.plays) == 1 and not run.records("wave_check")
    assert_all_reverted(run)


def test_the_time_budget_stops_a_rollout_that_outlasts_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, monkeypatch, spec({"serial": 1, "pause_s": 1}))

    def late() -> None:
        run.wall = 1000.0 + 60  # past the dead-man TTL less the revert's budget
    run.telemetry.on_poll = late
    out = run.go()
    assert out.exit_code == ExitCode.ABORTED and out.reason is not None
    assert out.reason.startswith("guard: time budget spent during the rollout")
    assert len(run.plays) == 1
    assert_all_reverted(run)


def test_the_report_and_ctdrill_revert_read_a_rollout_journal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run(tmp_path, monkeypatch, spec({"serial": 1}), hot_on("gw02"))
    run.go()
    recs = read_records(run.ctx.journal.path)
    summary = build_report(recs, journal=str(run.ctx.journal.path)).summary_json()
    assert (summary["exit_code"], summary["revert_verified"]) == (3, True)
    assert summary["reason"].startswith("guard: count on gw02")
    assert sorted(recovery_plan(recs).reverts) == GWS  # every host armed is recoverable


def test_a_rollout_with_no_base_changes_still_arms_every_host_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only steps change hosts: there is no wave, and the one first play arms them all."""
    drill = spec({"serial": 1}, changes=[], steps=[
        {"name": "s1", "duration_s": 1, "changes": [{"sysctl": {UDP: int(CHANGED)}}]}])
    run = Run(tmp_path, monkeypatch, drill)
    out = run.go()
    assert out.exit_code == ExitCode.OK and out.rollout is None
    assert run.plays[0] == (True, {h: {} for h in GWS})
    assert not run.records("rollout")
