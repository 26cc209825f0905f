"""The game-day suite file (drills/gameday.yaml): which drills, in what order, when not."""

from __future__ import annotations

import re
from datetime import time as dtime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from ctdrill.spec.models import Strict

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Window(Strict):
    """A weekly blackout window in the suite's time zone, e.g. a trading session."""

    name: str = ""
    days: list[Day] = Field(..., min_length=1)
    start: str = Field(..., description="HH:MM local time.")
    end: str = Field(..., description="HH:MM local time; before start = crosses midnight.")

    @field_validator("start", "end")
    @classmethod
    def hhmm(cls, v: str) -> str:
        if not HHMM.match(v):
            raise ValueError(f"'{v}' is not HH:MM (00:00 to 23:59)")
        return v

    def bounds(self) -> tuple[dtime, dtime]:
        (h1, m1), (h2, m2) = (map(int, self.start.split(":")), map(int, self.end.split(":")))
        return dtime(h1, m1), dtime(h2, m2)


class Blackout(Strict):
    timezone: str = Field("UTC", description="IANA time zone the windows are written in.")
    windows: list[Window] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{v}'") from exc
        return v


class SuiteDrill(Strict):
    spec: str = Field(..., description="Drill spec path, relative to the suite file.")
    inventory: str | None = Field(None, description="Inventory for this drill; default: "
                                  "the suite's (or the ephemeral lab).")


class Suite(Strict):
    """A game day: drills run in order, with one combined report and a history."""

    gameday: str = Field(..., pattern=r"^[a-z][a-z0-9\-]{0,40}$")
    description: str = ""
    drills: list[SuiteDrill] = Field(..., min_length=1)
    stop_on_failure: bool = True
    blackout: Blackout = Field(default_factory=Blackout)
