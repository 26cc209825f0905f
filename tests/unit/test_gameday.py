"""Game days: blackout windows (time zones, DST, midnight), units, refusals."""

from __future__ import annotations

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
