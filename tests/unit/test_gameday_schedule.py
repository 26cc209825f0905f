"""Game-day schedules that fail loudly: the calendar checked by systemd's own parser (or a
documented subset systemd also accepts), no newline reaches a unit, every path absolute,
and the units themselves accepted by `systemd-analyze verify`."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ctdrill.cli.app import app
from ctdrill.errors import ExitCode, InvalidInput
from ctdrill.gameday import calendar
from ctdrill.gameday.calendar import check_calendar
from ctdrill.gameday.schedule import render_units
from tests.consumers import require_tool

REPO = Path(__file__).resolve().parents[2]
SPEC = "drill: d\ntargets: {hosts: gw}\n"
INVENTORY = "all:\n  hosts:\n    gw:\n      ansible_host: 192.0.2.10\n"
INJECTION = "daily\nExecStartPre=/bin/sh -c 'touch /tmp/pwned'"

# the README/docs examples, the subset's forms, and things neither should take
DOCUMENTED = ["Sat *-*-* 06:00:00", "Mon..Fri *-*-* 05:30", "daily", "weekly", "hourly",
              "Sat,Sun 06:00", "*-*-* 06:00 UTC", "Sat *-*-* 06:00:00 America/New_York",
              "Mon *-*-* *:0/15", "Tue 01,13:30:15"]
SUBSET_REFUSES = ["every blue moon", "Sat..Mon 05:30", "*-*-* 24:00", "*-*-* 5..3:00",
                  "2020-01-01 00:00", "*-02-30 00:00", "Sat *-*-* 06:00:00 Mars/Base",
                  "*:0/0", "--help", "06:00 06:00", "Sat"]


def analyzer() -> str:
    return require_tool("systemd-analyze")


def suite_dir(root: Path) -> tuple[Path, Path]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "d.yaml").write_text(SPEC)
    suite = root / "gameday.yaml"
    suite.write_text("gameday: weekly\ndrills: [{spec: d.yaml}]\n")
    inv = root / "prod.yml"
    inv.write_text(INVENTORY)
    return suite, inv


def verify(units: dict[str, str], where: Path) -> subprocess.CompletedProcess[str]:
    """systemd-analyze verify on the pair, written to `where` (the consumer's verdict)."""
    where.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (where / name).write_text(text)
    return subprocess.run([analyzer(), "verify", *sorted(units)], cwd=where,
                          capture_output=True, text=True, timeout=60, check=False)


# --- the calendar -----------------------------------------------------------------------


@pytest.mark.parametrize("expr", DOCUMENTED)
def test_documented_expressions_pass_systemd_and_the_subset(expr: str) -> None:
    by_systemd = check_calendar(expr, analyzer())
    assert by_systemd.checked_by == "systemd-analyze" and by_systemd.next_elapse
    assert check_calendar(expr, "").checked_by == "ctdrill"


@pytest.mark.parametrize("expr", ["every blue moon", "--help", "*-02-30 00:00",
                                  "2020-01-01 00:00", "Sat..Mon 05:30", "*-*-* 24:00"])
def test_systemd_analyze_refusals_are_invalid_input(expr: str) -> None:
    with pytest.raises(InvalidInput, match=r"never elapses|not a systemd calendar") as exc:
        check_calendar(expr, analyzer())
    assert "\n" not in exc.value.one_line()


@pytest.mark.parametrize("expr", SUBSET_REFUSES)
def test_the_subset_refuses_what_it_does_not_document(expr: str) -> None:
    with pytest.raises(InvalidInput):
        check_calendar(expr, "")


@pytest.mark.parametrize("expr", DOCUMENTED + SUBSET_REFUSES)
def test_whatever_the_subset_accepts_systemd_accepts_and_fires(expr: str) -> None:
    """The fallback is never looser than systemd: a schedule written without
    systemd-analyze loads and elapses where systemd is."""
    try:
        check_calendar(expr, "")
    except InvalidInput:
        return
    out = subprocess.run([analyzer(), "calendar", "--", expr], capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0 and "Next elapse: never" not in out.stdout, out.stderr


@pytest.mark.parametrize("checker", [None, ""])
@pytest.mark.parametrize("expr", [INJECTION, "daily\r", "Sat\x1b[2J 06:00", "daily\x00",
                                  "Sat *-*-* 06:00:00\u2028", "   "])
def test_control_characters_never_reach_a_checker(expr: str, checker: str | None) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_calendar(expr, checker)
    assert "\n" not in exc.value.one_line() and "\r" not in exc.value.one_line()


# --- the units --------------------------------------------------------------------------


def odd_install(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A checkout whose path needs systemd quoting: a space, a specifier, a variable."""
    root = tmp_path / "srv dir %h $USER"
    suite, inv = suite_dir(root)
    exe = root / "bin" / "ctdrill"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return root, suite, inv, exe


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    root, suite, inv, exe = odd_install(tmp_path)
    units = render_units("weekly", suite, exe, root, "Sat *-*-* 06:00:00", inv)
    result = verify(units, tmp_path / "units")
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    service = units["ctdrill-gameday-weekly.service"].splitlines()
    assert "Wants=network-online.target" in service
    assert "After=network-online.target" in service
    assert [ln for ln in service if ln.startswith("SuccessExitStatus=")] == [
        f"SuccessExitStatus={int(ExitCode.SKIPPED)}"]
    assert "WorkingDirectory=" + str(root).replace("%", "%%") in service


def test_verify_catches_what_the_rendering_prevents(tmp_path: Path) -> None:
    """The consumer check can fail: a calendar systemd refuses, or the executable quoted
    for a shell (no %% for the specifier), is caught by systemd-analyze verify."""
    root, suite, inv, exe = odd_install(tmp_path)
    units = render_units("weekly", suite, exe, root, "every blue moon", inv)
    assert verify(units, tmp_path / "a").returncode != 0
    units = render_units("weekly", suite, exe, root, "daily", inv)
    name = "ctdrill-gameday-weekly.service"
    units[name] = "\n".join(f"ExecStart={shlex.quote(str(exe))} gameday run x"
                            if ln.startswith("ExecStart=") else ln
                            for ln in units[name].splitlines()) + "\n"
    assert verify(units, tmp_path / "b").returncode != 0


def test_render_refuses_relative_paths_and_control_characters(tmp_path: Path) -> None:
    root, suite, inv, exe = odd_install(tmp_path)
    with pytest.raises(InvalidInput, match="not an absolute path"):
        render_units("weekly", Path("gameday.yaml"), exe, root, "daily", inv)
    with pytest.raises(InvalidInput, match="control character"):
        render_units("weekly", suite, exe, root / "x\nExecStartPre=/bin/sh", "daily", inv)
    with pytest.raises(InvalidInput, match="control character"):
        render_units("weekly", suite, exe, root, INJECTION, inv)


# --- the command ------------------------------------------------------------------------


def schedule(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["gameday", "schedule", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.mark.parametrize("with_systemd", [True, False])
def test_newline_injection_is_one_line_exit_2_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_systemd: bool) -> None:
    if with_systemd:
        analyzer()
    else:
        monkeypatch.setattr(calendar, "find_analyzer", lambda: None)
    suite, inv = suite_dir(tmp_path / "s")
    out = tmp_path / "units"
    code, output = schedule(str(suite), "-i", str(inv), "--on-calendar", INJECTION,
                            "--output", str(out))
    assert code == ExitCode.INVALID_INPUT
    assert len(output.strip().splitlines()) == 1 and "control" in output
    assert not out.exists()


def test_every_blue_moon_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    analyzer()
    suite, inv = suite_dir(tmp_path / "s")
    out = tmp_path / "units"
    code, output = schedule(str(suite), "-i", str(inv), "--on-calendar", "every blue moon",
                            "--output", str(out))
    assert code == ExitCode.INVALID_INPUT and "not a systemd calendar" in output
    assert len(output.strip().splitlines()) == 1 and not out.exists()


def test_missing_inventory_suite_or_drill_is_exit_2(tmp_path: Path) -> None:
    suite, inv = suite_dir(tmp_path / "s")
    out = tmp_path / "units"
    code, output = schedule(str(suite), "-i", str(tmp_path / "absent.yml"), "--output",
                            str(out))
    assert code == ExitCode.INVALID_INPUT and "does not exist" in output
    code, _ = schedule(str(tmp_path / "absent.yaml"), "-i", str(inv), "--output", str(out))
    assert code == ExitCode.INVALID_INPUT
    (tmp_path / "s" / "d.yaml").unlink()
    code, output = schedule(str(suite), "-i", str(inv), "--output", str(out))
    assert code == ExitCode.INVALID_INPUT and "d.yaml" in output
    assert not out.exists()


def test_units_name_absolute_paths_and_the_checkout_as_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite_dir(tmp_path / "s")
    monkeypatch.chdir(tmp_path / "s")  # relative arguments, run from elsewhere
    out = tmp_path / "units"
    code, output = schedule("gameday.yaml", "-i", "prod.yml", "--on-calendar", "daily",
                            "--output", str(out))
    assert code == 0, output
    service = (out / "ctdrill-gameday-weekly.service").read_text().splitlines()
    assert f"WorkingDirectory={REPO}" in service
    exec_line = next(ln for ln in service if ln.startswith("ExecStart="))
    words = exec_line.removeprefix("ExecStart=").split()
    assert words[1:4] == ["gameday", "run", str(tmp_path / "s" / "gameday.yaml")]
    assert words[4:] == ["-i", str(tmp_path / "s" / "prod.yml")]
    assert Path(words[0]).is_absolute() and Path(words[0]).name == "ctdrill"
    code, _ = schedule("gameday.yaml", "--workdir", str(tmp_path), "--output", str(out))
    assert code == 0
    assert f"WorkingDirectory={tmp_path}" in (out / "ctdrill-gameday-weekly.service"
                                              ).read_text().splitlines()
