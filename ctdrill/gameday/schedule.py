"""systemd timer + service for a game-day suite (pure rendering).

Every value that reaches a unit file is checked or quoted for systemd's own syntax
(not a shell's): paths are absolute and free of control characters, `%` is doubled
(specifiers), ExecStart words are double-quoted with C escapes and `$$` for a literal
dollar. The calendar expression is checked before (gameday/calendar.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from ctdrill.errors import ExitCode, InvalidInput

SAFE_WORD = re.compile(r"^[A-Za-z0-9_@+=:,./-]+$")


def unit_name(suite: str) -> str:
    return f"ctdrill-gameday-{suite}"


def _checked(path: Path, what: str) -> str:
    """An absolute path as unit-file text, or InvalidInput (a newline would start a new
    directive)."""
    text = str(path)
    if not path.is_absolute():
        raise InvalidInput(f"{what} {text!r} is not an absolute path", "pass an absolute path")
    if any(ord(c) < 32 or ord(c) == 127 for c in text) or text != text.strip():
        raise InvalidInput(f"{what} path {text!a} holds a control character or "
                           "surrounding whitespace, which a systemd unit cannot carry",
                           "move it to a plain path")
    return text


def exec_word(text: str, *, executable: bool = False) -> str:
    """One ExecStart word as systemd splits it: plain when safe, else double-quoted with
    C escapes; `%` doubled (specifiers), and `$` doubled in arguments (variables). The
    executable's path is not variable-expanded, so there `$` stays single."""
    text = text.replace("%", "%%")
    if SAFE_WORD.match(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped if executable else escaped.replace("$", "$$")}"'


def exec_start(ctdrill_bin: Path, suite_path: Path, inventory: Path | None) -> str:
    """The ExecStart= value: ctdrill gameday run SUITE [-i INVENTORY], absolute paths."""
    args = ["gameday", "run", _checked(suite_path, "suite")]
    if inventory is not None:
        args += ["-i", _checked(inventory, "inventory")]
    return " ".join([exec_word(_checked(ctdrill_bin, "ctdrill executable"), executable=True),
                     *(exec_word(a) for a in args)])


def render_units(suite_name: str, suite_path: Path, ctdrill_bin: Path, workdir: Path,
                 on_calendar: str, inventory: Path | None) -> dict[str, str]:
    """A oneshot service running the suite and a timer firing it.

    Only exit 6 (skipped: inside a blackout window, or a live run holds the suite's lock)
    counts as success besides 0; an environment failure (5), a failed expectation (1) or
    revert (4) fails the unit, so `systemctl --failed` and OnFailure= see it.
    `on_calendar` must already be checked (gameday.calendar.check_calendar)."""
    if any(not 32 <= ord(c) < 127 for c in on_calendar):
        raise InvalidInput(f"--on-calendar {on_calendar!a} holds a control character",
                           "check it with gameday.calendar.check_calendar first")
    name = unit_name(suite_name)
    directory = _checked(workdir, "working directory").replace("%", "%%")
    service = f"""[Unit]
Description=ctdrill game day {suite_name}
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
WorkingDirectory={directory}
ExecStart={exec_start(ctdrill_bin, suite_path, inventory)}
# exit {int(ExitCode.SKIPPED)}: skipped (blackout window, or a live run holds the suite's lock)
SuccessExitStatus={int(ExitCode.SKIPPED)}
"""
    timer = f"""[Unit]
Description=Schedule of ctdrill game day {suite_name}

[Timer]
OnCalendar={on_calendar}
Persistent=false
Unit={name}.service

[Install]
WantedBy=timers.target
"""
    return {f"{name}.service": service, f"{name}.timer": timer}
