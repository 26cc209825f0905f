"""Game days: blackout windows (time zones, DST, midnight), units, refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctdrill.cli.app import app
from ctdrill.errors import ExitCode, InvalidInput
from ctdrill.gameday.blackout import active_window
from ctdrill.gameday.runner import SuiteSkipped, load_suite, run_suite, suite_lock
from ctdrill.gameday.schedule import render_units
from ctdrill.gameday.suite import Blackout, Window
from tests.unit.api_fakes import FakeEngine

NY = Blackout(timezone="America/New_York", windows=[
    Window(name="cash", days=["mon", "tue", "wed", "thu", "fri"], start="09:25", end="16:05"),
    Window(name="overnight", days=["sun"], start="18:00", end="08:00")])


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_session_window_follows_new_york_time_across_dst() -> None:
    # winter (EST, UTC-5): 09:30 New York = 14:30 UTC; summer (EDT, UTC-4): 13:30 UTC
    assert active_window(NY, utc(2026, 1, 14, 14, 30)) is not None   # Wednesday
    assert active_window(NY, utc(2026, 1, 14, 13, 30)) is None
    assert active_window(NY, utc(2026, 7, 15, 13, 30)) is not None
    assert active_window(NY, utc(2026, 7, 15, 20, 30)) is None       # 16:30 EDT
    assert active_window(NY, utc(2026, 1, 17, 15, 0)) is None        # Saturday


def test_window_crossing_midnight_belongs_to_its_start_day() -> None:
    assert active_window(NY, utc(2026, 1, 18, 23, 30)) is not None  # Sun 18:30 EST
    assert active_window(NY, utc(2026, 1, 19, 12, 0)) is not None   # Mon 07:00 EST, carried
    assert active_window(NY, utc(2026, 1, 20, 12, 0)) is None       # Tue 07:00: Mon not listed


def test_bad_windows_and_zones_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("gameday: x\ndrills: [{spec: a.yaml}]\nblackout: {timezone: Mars/Base, "
                   "windows: []}\n")
    with pytest.raises(InvalidInput, match="unknown time zone"):
        load_suite(bad)
    bad.write_text("gameday: x\ndrills: [{spec: a.yaml}]\nblackout: {windows: [{days: [mon],"
                   " start: '25:00', end: '10:00'}]}\n")
    with pytest.raises(InvalidInput, match="HH:MM"):
        load_suite(bad)


def test_units_run_the_suite_and_tolerate_only_skips() -> None:
    units = render_units("weekly", Path("/srv/drills/gameday.yaml"), Path("/opt/ctdrill"),
                         Path("/srv"), "Sat *-*-* 06:00:00", Path("/srv/inv.yml"))
    service, timer = units["ctdrill-gameday-weekly.service"], units["ctdrill-gameday-weekly.timer"]
    assert "ExecStart=/opt/ctdrill gameday run /srv/drills/gameday.yaml -i /srv/inv.yml" in service
    assert "SuccessExitStatus=6\n" in service and "Type=oneshot" in service
    assert "SuccessExitStatus=5" not in service and "WorkingDirectory=/srv\n" in service
    assert "OnCalendar=Sat *-*-* 06:00:00" in timer


def suite_files(tmp_path: Path, window_now: bool) -> tuple[Path, Path]:
    (tmp_path / "d.yaml").write_text("drill: d\ntargets: {hosts: gw}\n")
    days = "[mon, tue, wed, thu, fri, sat, sun]"
    # two overlapping windows leave no minute of the day uncovered
    window = (f"[{{name: always, days: {days}, start: '00:00', end: '23:59'}}, "
              f"{{name: always, days: {days}, start: '12:00', end: '11:59'}}]"
              if window_now else "[]")
    suite = tmp_path / "gameday.yaml"
    suite.write_text(f"gameday: t\ndrills: [{{spec: d.yaml}}]\nblackout: {{timezone: UTC, "
                     f"windows: {window}}}\n")
    inv = tmp_path / "prod.yml"  # a real inventory (no lab hosts); never contacted here
    inv.write_text("all:\n  hosts:\n    gw:\n      ansible_host: 192.0.2.10\n")
    return suite, inv


def test_blackout_skips_a_real_inventory_unless_forced(tmp_path: Path) -> None:
    suite, inv = suite_files(tmp_path, window_now=True)
    result = CliRunner().invoke(app, ["gameday", "run", str(suite), "-i", str(inv),
                                      "--history", str(tmp_path / "h")])
    assert result.exit_code == ExitCode.SKIPPED and int(ExitCode.SKIPPED) == 6
    assert "inside blackout window 'always'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "h").exists()  # a skipped run leaves no history behind
    plan = CliRunner().invoke(app, ["gameday", "plan", str(suite), "-i", str(inv)])
    assert "REFUSED now" in plan.output and "always" in plan.output


def test_a_running_suite_skips_a_second_one(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTDRILL_RUN_DIR", str(tmp_path / "run"))
    suite, inv = suite_files(tmp_path, window_now=False)
    with suite_lock("t"):
        with pytest.raises(SuiteSkipped, match="in progress"):
            run_suite(suite, inv, history_root=tmp_path / "h")
        result = CliRunner().invoke(app, ["gameday", "run", str(suite), "-i", str(inv),
                                          "--history", str(tmp_path / "h")])
    assert result.exit_code == ExitCode.SKIPPED, result.output
    assert "another run of it is in progress" in result.output
    assert not (tmp_path / "h").exists()


def test_an_environment_failure_is_exit_5_not_a_skip(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the two skips exit 6 (a timer's success); a machine that cannot even take
    the lock fails the unit."""
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("CTDRILL_RUN_DIR", str(tmp_path / "file" / "run"))
    suite, inv = suite_files(tmp_path, window_now=False)
    result = CliRunner().invoke(app, ["gameday", "run", str(suite), "-i", str(inv),
                                      "--history", str(tmp_path / "h")])
    assert result.exit_code == ExitCode.ENVIRONMENT, result.output
    assert "cannot open the game-day lock" in result.output
    assert len(result.output.strip().splitlines()) == 1


def _two_drill_suite(tmp_path: Path, stop_on_failure: bool) -> Path:
    for name in ("first", "second"):
        (tmp_path / f"{name}.yaml").write_text(f"drill: {name}\ntargets: {{hosts: gw}}\n")
    suite = tmp_path / "gameday.yaml"
    suite.write_text("gameday: two\ndrills: [{spec: first.yaml}, {spec: second.yaml}]\n"
                     f"stop_on_failure: {str(stop_on_failure).lower()}\n")
    return suite


@pytest.mark.parametrize(("stop", "ran", "code"), [(False, ["first", "second"], 4),
                                                   (True, ["first"], 1)])
def test_suite_runs_drills_in_order_through_the_api_with_reports_and_history(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: bool, ran: list[str],
        code: int) -> None:
    """The engine is a stand-in (no root): what is tested is the runner's order,
    severity, stop-on-failure, reports and history."""
    monkeypatch.setenv("CTDRILL_RUN_DIR", str(tmp_path / "run"))
    engine = FakeEngine(monkeypatch, tmp_path, ExitCode.EXPECTATIONS_FAILED,
                        ExitCode.REVERT_FAILED)
    suite = _two_drill_suite(tmp_path, stop)
    inv = tmp_path / "inv.yml"
    outcome = run_suite(suite, inv, history_root=tmp_path / "h")
    assert [c["drill"] for c in engine.calls] == ran
    assert all(c["inventory"] == inv and c["ephemeral_lab"] is None for c in engine.calls)
    assert int(outcome.exit_code) == code
    assert [d["drill"] for d in outcome.drills] == ran
    for d in outcome.drills:
        assert set(d["reports"]) == {"html", "md", "junit"}
        assert Path(d["reports"]["html"]).read_text().startswith("<!DOCTYPE html>")
        assert d["reports"]["html"] in (outcome.dir / "summary.md").read_text()
    assert "| first | 1 |" in (outcome.dir / "summary.md").read_text()
    index = json.loads((tmp_path / "h" / "two" / "index.json").read_text())
    assert [e["exit_code"] for e in index] == [code]


@pytest.mark.parametrize(("codes", "kept"), [((ExitCode.OK, ExitCode.OK), False),
                                             ((ExitCode.REVERT_FAILED, ExitCode.OK), True)])
def test_suite_without_inventory_shares_one_lab_kept_only_after_a_failed_revert(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codes: tuple[ExitCode, ...],
        kept: bool) -> None:
    monkeypatch.setenv("CTDRILL_RUN_DIR", str(tmp_path / "run"))
    engine = FakeEngine(monkeypatch, tmp_path, *codes)
    run_suite(_two_drill_suite(tmp_path, stop_on_failure=False), None,
              history_root=tmp_path / "h")
    (lab,) = engine.labs
    assert [c["ephemeral_lab"] for c in engine.calls] == [lab, lab]
    assert engine.downs == ([] if kept else [lab])


def test_an_invalid_drill_stops_the_suite_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTDRILL_RUN_DIR", str(tmp_path / "run"))
    engine = FakeEngine(monkeypatch, tmp_path)
    suite = _two_drill_suite(tmp_path, stop_on_failure=False)
    (tmp_path / "second.yaml").write_text("drill: second\n")
    result = CliRunner().invoke(app, ["gameday", "run", str(suite), "-i",
                                      str(tmp_path / "inv.yml"), "--history",
                                      str(tmp_path / "h")])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "second.yaml:1:1" in result.output and len(result.output.strip().splitlines()) == 1
    assert engine.calls == [] and not (tmp_path / "h").exists()
