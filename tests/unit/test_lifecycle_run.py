"""The drill lifecycle composed (lifecycle/run.py) over fake hosts and a scripted
observation: the steps in order, the journal they write, the exit codes, and the revert
on every way out (normal end, failed expectation, guard, exception, SIGINT, SIGTERM)."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path
from typing import Any, cast

import pytest

from ctdrill.engine.hostops import HostOps
from ctdrill.engine.signals import StopRequested, StopSignals
from ctdrill.errors import CtdrillError, EnvironmentProblem, ExitCode, InvalidInput
from ctdrill.journal import Journal, read_journal, read_records
from ctdrill.lifecycle import observe as observe_mod
from ctdrill.lifecycle import prepare as prepare_mod
from ctdrill.lifecycle import run_drill
from ctdrill.lifecycle.context import Budget, RunContext
from ctdrill.lifecycle.prepare import open_run
from ctdrill.lifecycle.run import execute
from ctdrill.spec.models import DrillSpec
from tests.unit.lifecycle_fakes import (
    MAX,
    UDP,
    UDP_STREAM,
    FakeOps,
    Script,
    drill,
    interrupt,
    window_class,
    write_inventory,
)

WALL = 1000.0
PREPARED = ["start", "locking", "locked", "snapshot", "revert_plan", "intent", "budget",
            "outcome", "outcome", "applied_check"]
REVERTED = ["reverting", "revert", "end"]


def fake_ops(script: Script) -> Any:
    """HostOps' factory, faked (FakeOps has HostOps' methods, and only those)."""
    return lambda inv, run_id, t: cast(HostOps, FakeOps(script, inv, run_id, t))


def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: DrillSpec,
          script: Script) -> RunContext:
    """A run context over fake hosts, a scripted window and a frozen clock."""
    monkeypatch.setattr(observe_mod, "Window", window_class(script))
    ctx = open_run(spec, write_inventory(tmp_path), runs_dir=tmp_path / "runs",
                   ops_factory=fake_ops(script))
    ctx.budget = Budget.start(spec.guards.max_duration_s, wall=lambda: WALL, mono=lambda: 0.0)
    return ctx


def records(ctx: RunContext) -> list[dict[str, Any]]:
    return read_journal(ctx.journal.path)


def kinds(ctx: RunContext) -> list[str]:
    return [r["type"] for r in records(ctx)]


def test_a_clean_run_goes_through_every_step_in_order(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script()
    ctx = start(tmp_path, monkeypatch, drill(), script)
    outcome = execute(ctx)
    assert (outcome.exit_code, outcome.reason) == (ExitCode.OK, None)
    assert script.calls == ["prepare", "apply", "observe", "revert"]
    assert kinds(ctx) == [*PREPARED, "metrics", "verdict", *REVERTED]
    # every record is one the typed journal reads back (what revert and reports read)
    assert [r.kind for r in read_records(ctx.journal.path)] == kinds(ctx)
    assert script.hosts["gw"][UDP] == "30"  # changed to 10 during the run, reverted
    end = records(ctx)[-1]
    assert end["exit_code"] == 0 and set(end["timings"]) == {
        "prepare", "apply", "revert_verify", "total"}
    assert outcome.final_regime == {"gw": "normal"} and outcome.reverted_ok


def _raise(exc: Exception) -> Any:
    def hook(_journal: Journal, _sig: StopSignals) -> None:
        raise exc
    return hook


class SilentReadBack(FakeOps):
    """An apply whose task read no host back (an older module, a lost result field)."""

    def applied_snapshots(self, result: Any) -> dict[str, dict[str, Any]]:
        return {}


@pytest.mark.parametrize("drift", [False, True])
def test_a_host_the_apply_did_not_read_back_is_snapshotted_and_still_checked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drift: bool) -> None:
    script = Script(drift=drift)
    monkeypatch.setattr(observe_mod, "Window", window_class(script))
    ctx = open_run(drill(), write_inventory(tmp_path), runs_dir=tmp_path / "runs",
                   ops_factory=lambda inv, run_id, t: cast(
                       HostOps, SilentReadBack(script, inv, run_id, t)))
    ctx.budget = Budget.start(60, wall=lambda: WALL, mono=lambda: 0.0)
    outcome = execute(ctx)
    assert script.calls[:3] == ["prepare", "apply", "snapshot"]
    assert outcome.exit_code == (ExitCode.ABORTED if drift else ExitCode.OK)


@pytest.mark.parametrize(("script", "spec_kw", "code", "reason", "tail"), [
    (Script(apply_fails=True), {}, ExitCode.ABORTED, "apply failed on gw: sysctl: boom",
     ["outcome", "abort"]),
    (Script(drift=True), {}, ExitCode.ABORTED,
     "gw differs from the plan after apply: sysctl net.netfilter.nf_conntrack_max: plan "
     "says 262144, host has 1", ["applied_check", "abort"]),
    (Script(during_observe=_raise(StopRequested("guard: ctr on gw is 0.95 > 0.9"))), {},
     ExitCode.ABORTED, "guard: ctr on gw is 0.95 > 0.9", ["applied_check", "abort"]),
    (Script(during_observe=interrupt), {}, ExitCode.ABORTED,
     "interrupted by SIGINT (Ctrl-C)", ["applied_check", "abort"]),
    (Script(during_observe=_raise(EnvironmentProblem("telemetry lost", "check"))), {},
     ExitCode.ABORTED, "telemetry lost: check", ["applied_check", "abort"]),
    (Script(during_observe=_raise(KeyError("x"))), {}, ExitCode.ABORTED,
     "internal error: KeyError('x')", ["applied_check", "abort"]),
    (Script(), {"expect": [{"kind": "metric", "host": "gw", "metric": "ctr", "op": "<",
                            "value": 0.5}]},
     ExitCode.EXPECTATIONS_FAILED, None, ["metrics", "verdict", "verdict"]),
    (Script(revert_unverified=True), {}, ExitCode.REVERT_FAILED, None,
     ["metrics", "verdict"]),
])
def test_every_way_out_after_prepare_reverts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             script: Script, spec_kw: dict[str, Any],
                                             code: ExitCode, reason: str | None,
                                             tail: list[str]) -> None:
    ctx = start(tmp_path, monkeypatch, drill(**spec_kw), script)
    outcome = execute(ctx)
    assert (outcome.exit_code, outcome.reason) == (code, reason)
    assert script.calls[-1] == "revert"
    assert kinds(ctx)[-len(tail) - 3:] == tail + REVERTED
    assert records(ctx)[-1]["exit_code"] == int(code)
    assert [r.kind for r in read_records(ctx.journal.path)] == kinds(ctx)
    if not script.revert_unverified:
        assert script.hosts["gw"][UDP] == "30"


def test_a_bug_journals_its_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = start(tmp_path, monkeypatch, drill(),
                Script(during_observe=_raise(KeyError("x"))))
    execute(ctx)
    abort = next(r for r in records(ctx) if r["type"] == "abort")
    assert abort["traceback"].splitlines()[-1] == "KeyError: 'x'"


@pytest.mark.parametrize(("script", "spec_kw", "error", "journal"), [
    (Script(prepare_raises=EnvironmentProblem("target gw is unreachable", "check")), {},
     EnvironmentProblem, ["start", "locking", "unlocked", "refused"]),
    (Script(refuse_lock=True), {}, EnvironmentProblem,
     ["start", "locking", "locked", "snapshot", "unlocked", "refused"]),
    (Script(), {"changes": [{"sysctl": {MAX: 1000}}]}, InvalidInput,
     ["start", "locking", "locked", "snapshot", "unlocked", "refused"]),
])
def test_a_refusal_before_prepare_unlocks_and_raises(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: Script,
        spec_kw: dict[str, Any], error: type[CtdrillError], journal: list[str]) -> None:
    ctx = start(tmp_path, monkeypatch, drill(**spec_kw), script)
    with pytest.raises(error):
        execute(ctx)
    assert kinds(ctx) == journal  # no `end`: the error is the outcome, nothing to revert
    assert "unlock" in script.calls and "revert" not in script.calls and (
        "apply" not in script.calls)


@pytest.mark.parametrize(("signum", "reason"), [
    (signal.SIGINT, "interrupted by SIGINT (Ctrl-C)"),
    (signal.SIGTERM, "interrupted by SIGTERM"),
])
def test_a_real_signal_mid_observation_stops_and_reverts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, reason: str) -> None:
    before = signal.getsignal(signum)

    def kill(_journal: Journal, sig: StopSignals) -> None:
        os.kill(os.getpid(), signum)
        sig.checkpoint()

    script = Script(during_observe=kill)
    ctx = start(tmp_path, monkeypatch, drill(), script)
    outcome = execute(ctx)
    assert (outcome.exit_code, outcome.reason) == (ExitCode.ABORTED, reason)
    assert kinds(ctx)[-4:] == ["abort", *REVERTED] and script.hosts["gw"][UDP] == "30"
    assert signal.getsignal(signum) == before  # the run's handlers are gone


def test_signals_while_reverting_are_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    script = Script(during_revert=lambda: os.kill(os.getpid(), signal.SIGINT))
    ctx = start(tmp_path, monkeypatch, drill(), script)
    outcome = execute(ctx)
    assert (outcome.exit_code, outcome.reason) == (ExitCode.OK, None)
    assert kinds(ctx)[-3:] == REVERTED and script.hosts["gw"][UDP] == "30"
    assert "received while reverting: the revert continues" in capsys.readouterr().err


@pytest.mark.parametrize(("max_s", "deadline"), [(600.0, WALL + 60 - 5), (30.0, WALL + 30)])
def test_the_budget_stops_observation_before_the_dead_man_ttl(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_s: float,
        deadline: float) -> None:
    script = Script()
    ctx = start(tmp_path, monkeypatch, drill(guards={"max_duration_s": max_s}), script)
    execute(ctx)
    assert script.deadline == deadline
    budget = next(r for r in records(ctx) if r["type"] == "budget")
    assert budget["revert_budget_s"] == 5.0 and budget["ansible_timeout_s"] == 30


def test_steps_apply_under_the_armed_switch(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    spec = drill(changes=[], observe={"duration_s": 2}, steps=[
        {"name": "a", "duration_s": 1, "changes": [{"sysctl": {UDP: 12}}]},
        {"name": "b", "duration_s": 1, "changes": [{"sysctl": {UDP_STREAM: 60}}]}])
    script = Script()
    ctx = start(tmp_path, monkeypatch, spec, script)
    assert execute(ctx).exit_code == ExitCode.OK
    assert script.calls == ["prepare", "apply", "observe", "apply_step", "apply_step", "revert"]
    steps = [r.get("step") for r in records(ctx) if r["type"] == "intent"]
    assert steps == [None, "a", "b"]
    revert_plan = next(r for r in records(ctx) if r["type"] == "revert_plan")
    assert revert_plan["plan"]["sysctl"] == {UDP: "30", UDP_STREAM: "120"}
    assert script.hosts["gw"] == {UDP: "30", UDP_STREAM: "120", MAX: "262144"}


def test_a_journal_that_fails_after_prepare_still_reverts_and_exits_4(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script()
    ctx = start(tmp_path, monkeypatch, drill(), script)

    def write(fd: int, data: bytes) -> int:
        if b'"type":"metrics"' in data:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    ctx.journal.close()
    ctx.journal = Journal(ctx.journal.path, write=write)
    outcome = execute(ctx)
    assert outcome.exit_code == ExitCode.REVERT_FAILED and outcome.reason is not None
    assert "writing 'metrics' failed" in outcome.reason and (
        "records not journaled; the hosts were reverted" in outcome.reason)
    assert script.calls[-1] == "revert" and script.hosts["gw"][UDP] == "30"
    assert kinds(ctx) == PREPARED  # nothing after the failed write


def test_a_run_that_changes_nothing_only_observes(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script()
    ctx = start(tmp_path, monkeypatch, drill(changes=[]), script)
    assert execute(ctx).exit_code == ExitCode.OK
    assert script.calls == ["observe"] and kinds(ctx) == ["start", "metrics", "end"]


def test_run_drill_composes_the_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script()
    monkeypatch.setattr(observe_mod, "Window", window_class(script))
    monkeypatch.setattr(prepare_mod, "HostOps", fake_ops(script))
    outcome = run_drill(drill(), write_inventory(tmp_path), runs_dir=tmp_path / "runs",
                        spec_path=str(tmp_path / "spec.yaml"))
    assert outcome.exit_code == ExitCode.OK and outcome.journal.parent.parent == tmp_path / "runs"
    recs = read_journal(outcome.journal)
    assert recs[0]["run_id"] == outcome.run_id and recs[-1]["type"] == "end"
    assert script.calls == ["prepare", "apply", "observe", "revert"]
