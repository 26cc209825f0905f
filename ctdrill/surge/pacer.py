"""Per-batch token bucket over a schedule (pure): when to send, and how many.

Tokens are the schedule's cumulative count N(t) minus what was sent. A worker sends
only when a batch worth of tokens is owed (a batch is ~2 ms of the current rate, at
most 1024 frames: one sendmmsg call), so syscalls stay large at high rates and
spacing stays fine at low ones. If the sender falls behind (CPU stolen, ENOBUFS
back-off), at most `debt_s` of owed flows are caught up; the rest is forgiven and
reported as shortfall, so a stall never turns into a burst far above the shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ctdrill.surge.shapes import Schedule

BATCH_MAX = 1024
"""sendmmsg's per-call limit (UIO_MAXIOV)."""


@dataclass(frozen=True)
class Grant:
    n: int
    wait: float = 0.0
    done: bool = False


class BatchPacer:
    def __init__(self, schedule: Schedule, *, limit: int | None = None,
                 batch_max: int = BATCH_MAX, batch_s: float = 0.002,
                 debt_s: float = 0.05, max_sleep: float = 0.05) -> None:
        self.schedule = schedule
        self.limit = limit
        self.batch_max = batch_max
        self.batch_s = batch_s
        self.debt_s = debt_s
        self.max_sleep = max_sleep
        self.forgiven = 0

    def _batch(self, elapsed: float) -> int:
        rate = self.schedule.rate_at(elapsed)
        return max(1, min(self.batch_max, int(rate * self.batch_s)))

    def grant(self, elapsed: float, sent: int) -> Grant:
        """What to do at `elapsed` seconds after `sent` flows."""
        left = self.batch_max if self.limit is None else self.limit - sent
        if left <= 0:
            return Grant(0, done=True)
        if not self.schedule.paced:
            if elapsed >= self.schedule.duration:
                return Grant(0, done=True)
            return Grant(min(self.batch_max, left))
        ended = elapsed >= self.schedule.duration
        done = sent + self.forgiven
        owed = math.floor(self.schedule.due(min(elapsed, self.schedule.duration)) + 1e-9) - done
        cap = max(self.batch_max, int(self.schedule.rate_at(elapsed) * self.debt_s))
        if owed > cap:
            self.forgiven += owed - cap
            owed = cap
        if ended:  # send what is still owed (the last partial batch), then stop
            return Grant(min(owed, self.batch_max, left)) if owed >= 1 else Grant(0, done=True)
        batch = self._batch(elapsed)
        if owed >= batch:
            return Grant(min(owed, self.batch_max, left))
        target = self.schedule.time_for(done + batch)
        if target >= self.schedule.duration:  # the tail: no full batch will come
            if owed >= 1:
                return Grant(min(owed, left))
            target = min(self.schedule.time_for(done + 1), self.schedule.duration)
        return Grant(0, wait=min(max(target - elapsed, 0.0), self.max_sleep))
