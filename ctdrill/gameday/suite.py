"""The game-day suite file (drills/gameday.yaml): which drills, in what order, when not.

A suite is told apart from a drill spec by its top-level key `gameday` (a drill has
`drill`); `ctdrill validate` and `ctdrill schema --suite` rely on that.
"""

from __future__ import annotations

import functools
from datetime import time as dtime
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import Field

from ctdrill.spec.strict import Among, Matching, Strict, anchored

SUITE_KEY = "gameday"
"""The top-level key only suites have."""
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HHMM = Annotated[str, Matching(r"([01][0-9]|2[0-3]):[0-5][0-9]",
                               "{} is not HH:MM (00:00 to 23:59)")]


@functools.cache
def known_zones() -> frozenset[str]:
    """The IANA zones this machine knows (where blackouts are evaluated)."""
    return frozenset(available_timezones())


Zone = Annotated[str, Among(known_zones, "unknown time zone {}; expected an IANA name "
                                         "such as America/New_York or UTC")]


class Window(Strict):
    """A weekly blackout window in the suite's time zone, e.g. a trading session."""

    name: str = ""
    days: list[Day] = Field(..., min_length=1)
    start: HHMM = Field(..., description="HH:MM local time.")
    end: HHMM = Field(..., description="HH:MM local time; before start = crosses midnight.")

    def bounds(self) -> tuple[dtime, dtime]:
        (h1, m1), (h2, m2) = (map(int, self.start.split(":")), map(int, self.end.split(":")))
        return dtime(h1, m1), dtime(h2, m2)


class Blackout(Strict):
    timezone: Zone = Field("UTC", description="IANA time zone the windows are written in.")
    windows: list[Window] = Field(default_factory=list)


class SuiteDrill(Strict):
    spec: str = Field(..., min_length=1,
                      description="Drill spec path, relative to the suite file.")
    inventory: str | None = Field(None, min_length=1,
                                  description="Inventory for this drill; default: the "
                                              "suite's (or the ephemeral lab).")


class Suite(Strict):
    """A game day: drills run in order, with one combined report and a history."""

    gameday: str = Field(..., pattern=anchored(r"[a-z][a-z0-9\-]{0,40}"),
                         description="Suite name; this key marks the file as a suite.")
    description: str = ""
    drills: list[SuiteDrill] = Field(..., min_length=1)
    stop_on_failure: bool = True
    blackout: Blackout = Field(default_factory=Blackout)
