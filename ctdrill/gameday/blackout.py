"""Is a moment inside a blackout window? (pure; time zones and DST via zoneinfo)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ctdrill.gameday.suite import Blackout, Window

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _inside(window: Window, local: datetime) -> bool:
    start, end = window.bounds()
    t = local.time().replace(second=0, microsecond=0)
    day = DAYS[local.weekday()]
    if start <= end:
        return day in window.days and start <= t < end
    # crosses midnight: the part after midnight belongs to the previous day's window
    yesterday = DAYS[(local - timedelta(days=1)).weekday()]
    return (day in window.days and t >= start) or (yesterday in window.days and t < end)


def active_window(blackout: Blackout, when: datetime) -> Window | None:
    """The blackout window `when` (timezone-aware) falls in, if any."""
    local = when.astimezone(ZoneInfo(blackout.timezone))
    return next((w for w in blackout.windows if _inside(w, local)), None)


def describe(blackout: Blackout) -> list[str]:
    return [f"{w.name or 'blackout'}: {','.join(w.days)} {w.start}-{w.end} {blackout.timezone}"
            for w in blackout.windows]
