"""Is an `--on-calendar` value a systemd calendar expression? Checked before any unit is
written, so a bad schedule fails now, not when systemd loads the timer.

systemd's own parser (`systemd-analyze calendar`) decides when it is installed; without
it only the documented subset below is accepted (docs/GAMEDAY.md). Either way the value
must be printable ASCII: a newline would end the `OnCalendar=` line and start a new
directive in the unit file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ctdrill.errors import InvalidInput

SHORTHANDS = ("minutely", "hourly", "daily", "weekly", "monthly", "quarterly",
              "semiannually", "yearly", "annually")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HINT = ("use a systemd OnCalendar expression, e.g. 'Sat *-*-* 06:00:00', "
        "'Mon..Fri *-*-* 05:30', 'daily' (see docs/GAMEDAY.md)")

_NUM = r"\d{1,2}"
_ITEM = rf"(?:\*|{_NUM}(?:\.\.{_NUM})?)(?:/{_NUM})?"
_COMP = rf"{_ITEM}(?:,{_ITEM})*"
_DAY = r"(?:mon|tue|wed|thu|fri|sat|sun)"
WEEKDAYS = re.compile(rf"^{_DAY}(?:\.\.{_DAY})?(?:,{_DAY}(?:\.\.{_DAY})?)*$", re.IGNORECASE)
TIME = re.compile(rf"^(?P<h>{_COMP}):(?P<min>{_COMP})(?::(?P<s>{_COMP}))?$")
BOUNDS = {"h": (0, 23), "min": (0, 59), "s": (0, 59)}


@dataclass(frozen=True)
class Calendar:
    """A checked expression: what goes into the unit, and what the checker made of it."""

    expression: str
    normalized: str
    next_elapse: str
    checked_by: str  # "systemd-analyze" or "ctdrill"


def shown(value: str) -> str:
    """The value quoted on one line, control characters escaped (for an error message)."""
    return ascii(value)


def find_analyzer() -> str | None:
    """systemd-analyze, where the systemd package puts it (also off a minimal PATH)."""
    return shutil.which("systemd-analyze") or shutil.which(
        "systemd-analyze", path="/usr/bin:/bin:/usr/local/bin")


def check_calendar(value: str, analyzer: str | None = None) -> Calendar:
    """The expression if systemd would accept it as OnCalendar=, else InvalidInput.

    `analyzer`: the systemd-analyze binary; None finds it, "" forces the documented
    subset (what a machine without systemd gets)."""
    expr = value.strip(" ")
    if not expr:
        raise InvalidInput("--on-calendar is empty", HINT)
    if any(not 32 <= ord(c) < 127 for c in expr):
        raise InvalidInput(f"--on-calendar {shown(value)} holds a control or non-ASCII "
                           "character, which would break the unit file", HINT)
    binary = find_analyzer() if analyzer is None else analyzer
    if binary:
        return _with_systemd(expr, binary)
    return _with_subset(expr)


def _with_systemd(expr: str, binary: str) -> Calendar:
    """systemd's parser decides; `--` keeps a value like '--help' from being an option."""
    env = {**os.environ, "LC_ALL": "C", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
    try:
        proc = subprocess.run([binary, "calendar", "--", expr], capture_output=True,
                              text=True, timeout=30, check=False, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return _with_subset(expr)  # the checker itself is broken: the strict subset decides
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["refused"])[0].rsplit(": ", 1)[-1]
        raise InvalidInput(f"--on-calendar {shown(expr)} is not a systemd calendar "
                           f"expression (systemd-analyze: {shown(why)[1:-1]})", HINT)
    fields = {}
    for line in proc.stdout.splitlines():
        key, sep, val = line.partition(":")
        if sep:
            fields[key.strip()] = val.strip()
    elapse = fields.get("Next elapse", "")
    if elapse == "never":
        raise InvalidInput(f"--on-calendar {shown(expr)} never elapses (systemd-analyze: "
                           "next elapse: never)", HINT)
    return Calendar(expr, fields.get("Normalized form", expr), elapse, "systemd-analyze")


def _with_subset(expr: str) -> Calendar:
    """The documented subset, which always elapses: a shorthand, or
    [WEEKDAYS] [*-*-*] HH:MM[:SS] [UTC | IANA zone]."""
    if expr.lower() in SHORTHANDS:
        return Calendar(expr, expr.lower(), "", "ctdrill")
    words = expr.split(" ")
    if len(words) > 1 and _zone(words[-1]):
        words = words[:-1]
    if len(words) > 1 and _weekdays(words[0]):
        words = words[1:]
    if len(words) == 2 and words[0] == "*-*-*":
        words = words[1:]
    time = TIME.match(words[0]) if len(words) == 1 else None
    if time is None:
        raise InvalidInput(f"--on-calendar {shown(expr)} is not in the documented calendar "
                           "syntax (systemd-analyze is not installed to check others)", HINT)
    for name, text in time.groupdict().items():
        if text is not None and not _in_bounds(text, *BOUNDS[name]):
            raise InvalidInput(f"--on-calendar {shown(expr)}: {text!r} is out of range "
                               f"{BOUNDS[name][0]}..{BOUNDS[name][1]}", HINT)
    return Calendar(expr, expr, "", "ctdrill")


def _weekdays(word: str) -> bool:
    """Mon, Mon..Fri, Sat,Sun (ranges run forwards, as systemd requires)."""
    if not WEEKDAYS.match(word):
        return False
    for item in word.lower().split(","):
        first, _, last = item.partition("..")
        if last and DAYS.index(first) > DAYS.index(last):
            return False
    return True


def _zone(word: str) -> bool:
    if word.upper() == "UTC":
        return True
    if "/" not in word:
        return False
    try:
        ZoneInfo(word)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _in_bounds(comp: str, lo: int, hi: int) -> bool:
    """Every number of a component (ranges' ends, not repetition steps) within [lo, hi]."""
    for item in comp.split(","):
        base, _, step = item.partition("/")
        if step and int(step) == 0:
            return False
        if base == "*":
            continue
        ends = [int(n) for n in base.split("..")]
        if not all(lo <= n <= hi for n in ends) or ends != sorted(ends):
            return False
    return True
