"""Replay profiles: (time, new flows per second) rows from CSV or JSON, checked (pure parse).

A profile is usually exported from a monitoring system after an incident, so the
parser accepts the common spellings (a header or none, `t`/`time`, `rate`/
`flows_per_s`, comments) and refuses anything ambiguous with FILE:LINE: message.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from ctdrill.errors import InvalidInput
from ctdrill.surge.spec import MAX_RATE

TIME_NAMES = ("t", "time", "ts", "time_s", "seconds")
RATE_NAMES = ("rate", "flows_per_s", "new_flows_per_s", "flows", "new_flows")
MAX_ROWS = 1_000_000
MAX_BYTES = 64 << 20

Points = list[tuple[float, float]]


class ProfileError(InvalidInput):
    """A profile file that cannot be replayed; the message says where and why."""


def _number(text: Any, what: str, where: str) -> float:
    if isinstance(text, bool):
        raise ProfileError(f"{where}: {what} {text!r} is not a number", "fix the profile")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ProfileError(f"{where}: {what} {text!r} is not a number",
                           "each row is: time in seconds, new flows per second") from None
    if not math.isfinite(value):
        raise ProfileError(f"{where}: {what} {text!r} is not finite", "fix the profile")
    return value


def _check(points: Points, label: str, where: list[str]) -> Points:
    if not points:
        raise ProfileError(f"{label}: no rows", "a profile needs at least one (t, rate) row")
    if len(points) > MAX_ROWS:
        raise ProfileError(f"{label}: {len(points)} rows", f"use at most {MAX_ROWS}")
    for i, (t, rate) in enumerate(points):
        if rate < 0 or rate > MAX_RATE:
            raise ProfileError(f"{where[i]}: rate {rate:g} out of range",
                               f"use 0 <= rate <= {MAX_RATE:g}")
        if i and t <= points[i - 1][0]:
            raise ProfileError(f"{where[i]}: time {t:g} is not after the previous row's "
                               f"{points[i - 1][0]:g}", "times must increase strictly")
    return points


def parse_csv(text: str, label: str = "profile") -> Points:
    rows = [(n, r) for n, r in enumerate(csv.reader(io.StringIO(text)), start=1)
            if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if not rows:
        raise ProfileError(f"{label}: no rows", "a profile needs at least one (t, rate) row")
    t_col, r_col = 0, 1
    first = [c.strip().lower() for c in rows[0][1]]
    try:
        float(first[0])
    except ValueError:  # a header row: find the columns by name
        t_col = next((first.index(n) for n in TIME_NAMES if n in first), -1)
        r_col = next((first.index(n) for n in RATE_NAMES if n in first), -1)
        if t_col < 0 or r_col < 0:
            raise ProfileError(f"{label}:{rows[0][0]}: header {','.join(first)} names no "
                               "time and rate columns",
                               f"name them one of {'/'.join(TIME_NAMES)} and "
                               f"{'/'.join(RATE_NAMES)}") from None
        rows = rows[1:]
    points: Points = []
    where: list[str] = []
    for line, row in rows:
        loc = f"{label}:{line}"
        if len(row) <= max(t_col, r_col):
            raise ProfileError(f"{loc}: expected 2 columns, got {len(row)}",
                               "each row is: time in seconds, new flows per second")
        points.append((_number(row[t_col].strip(), "time", loc),
                       _number(row[r_col].strip(), "rate", loc)))
        where.append(loc)
    return _check(points, label, where)


def parse_json(text: str, label: str = "profile") -> Points:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{label}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})",
                           "expected [[t, rate], ...] or [{\"t\": .., \"rate\": ..}, ...]"
                           ) from None
    if isinstance(data, dict) and isinstance(data.get("points"), list):
        data = data["points"]
    if not isinstance(data, list):
        raise ProfileError(f"{label}: expected a list of rows", "e.g. [[0, 1000], [1, 5000]]")
    points: Points = []
    where: list[str] = []
    for i, row in enumerate(data):
        loc = f"{label}[{i}]"
        if isinstance(row, list) and len(row) == 2:
            t, rate = row
        elif isinstance(row, dict):
            t = next((row[n] for n in TIME_NAMES if n in row), None)
            rate = next((row[n] for n in RATE_NAMES if n in row), None)
            if t is None or rate is None:
                raise ProfileError(f"{loc}: row {json.dumps(row)[:60]} has no time or rate",
                                   f"use keys {TIME_NAMES[0]} and {RATE_NAMES[0]}")
        else:
            raise ProfileError(f"{loc}: expected [t, rate] or an object, got "
                               f"{json.dumps(row)[:60]}", "e.g. [0, 1000]")
        points.append((_number(t, "time", loc), _number(rate, "rate", loc)))
        where.append(loc)
    return _check(points, label, where)


def parse_profile(text: str, label: str = "profile") -> Points:
    """JSON if it looks like JSON, else CSV."""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        return parse_json(text, label)
    return parse_csv(text, label)


def load_profile(path: Path) -> Points:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror or exc}",
                           "check the replay.profile path") from None
    if len(data) > MAX_BYTES:
        raise ProfileError(f"profile {path} is larger than {MAX_BYTES} bytes",
                           "a profile is one row per interval; resample it")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProfileError(f"profile {path} is not UTF-8 text",
                           "export it as CSV or JSON") from None
    return parse_profile(text, str(path))
