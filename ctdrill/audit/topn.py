"""Heavy hitters in bounded memory: the batched Misra-Gries summary (pure).

A table of a million entries can have a million distinct sources; counting each would
hold them all. `TopCounter` keeps at most `cap` keys: when a new key would make it
`cap + 1`, every count is lowered by the count of the key ranked `keep + 1` (so about
half the keys fall to zero and go) and that amount is added to `error`. Each count
kept then satisfies `count <= true count <= count + error`, and `error <= N / (keep + 1)`
for N items counted, so any key holding more than that share of the table is never lost.
While the distinct keys stay below `cap` (the lab, most gateways' /24s) the counts
are exact and `error` is 0.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

DEFAULT_CAP = 4096


@dataclass(frozen=True)
class Hitter(Generic[K]):
    key: K
    count: int


class TopCounter(Generic[K]):
    """Approximate counts of the most frequent keys, in O(cap) memory."""

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        if cap < 2:
            raise ValueError("cap must be >= 2")
        self.cap = cap
        self.keep = cap // 2
        self.counts: dict[K, int] = {}
        self.error = 0
        """The most any kept count may be below the true one."""
        self.trims = 0

    def add(self, key: K) -> None:
        """Count one occurrence of key (the hot path: one dict lookup when kept)."""
        counts = self.counts
        n = counts.get(key)
        if n is not None:
            counts[key] = n + 1
            return
        if len(counts) >= self.cap:
            self._trim()
        self.counts[key] = 1

    def _trim(self) -> None:
        ranked = sorted(self.counts.values(), reverse=True)
        cut = ranked[self.keep] if len(ranked) > self.keep else 0
        self.counts = {k: c - cut for k, c in self.counts.items() if c > cut}
        self.error += cut
        self.trims += 1

    def top(self, n: int) -> list[Hitter[K]]:
        """The n largest counts, largest first; ties in key order (stable output)."""
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        return [Hitter(k, c) for k, c in ranked[:n]]

    def get(self, key: K) -> int:
        return self.counts.get(key, 0)
