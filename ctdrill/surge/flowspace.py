"""Flow enumeration (pure): every packet a new 5-tuple until the space is used up.

A flow space is the product of three ranges: source addresses (`a`), source ports or
ICMP echo ids (`p`) and destination ports (`d`). Frames are generated in *rows*: all
values of the largest dimension with the other two held fixed. A row is built once per
worker and then reused for every other row by rewriting a few constant byte columns
(see rows.py), which is what makes generation cost nothing next to sending.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

DIMS = ("a", "p", "d")


@dataclass(frozen=True)
class Dim:
    start: int
    size: int

    def split(self, k: int) -> list[Dim]:
        """k contiguous, nearly equal parts (k <= size)."""
        base, extra = divmod(self.size, k)
        out, at = [], self.start
        for i in range(k):
            n = base + (1 if i < extra else 0)
            out.append(Dim(at, n))
            at += n
        return out


@dataclass(frozen=True)
class FlowSpace:
    """Flows (a, p, d): a is an IPv4 address as int, p and d are ports (or echo ids)."""

    a: Dim
    p: Dim
    d: Dim

    @property
    def size(self) -> int:
        return self.a.size * self.p.size * self.d.size

    def dim(self, name: str) -> Dim:
        dim: Dim = getattr(self, name)
        return dim

    @property
    def row_dim(self) -> str:
        """The largest dimension (ties: p, then d, then a): rows are as long as possible."""
        return max(("p", "d", "a"), key=lambda n: (self.dim(n).size, -("pda".index(n))))

    @property
    def outer_dims(self) -> tuple[str, str]:
        rest = [n for n in ("p", "d", "a") if n != self.row_dim]
        return rest[0], rest[1]

    @property
    def row_len(self) -> int:
        return self.dim(self.row_dim).size

    @property
    def rows(self) -> int:
        return self.size // self.row_len

    def row_values(self, r: int) -> dict[str, int]:
        """The fixed (outer) values of row r; the first outer dim varies fastest."""
        first, second = self.outer_dims
        f, s = self.dim(first), self.dim(second)
        return {first: f.start + r % f.size, second: s.start + (r // f.size) % s.size}

    def flow(self, i: int) -> tuple[int, int, int]:
        """Flow number i (wrapping after `size`)."""
        i %= self.size
        values = self.row_values(i // self.row_len)
        rd = self.dim(self.row_dim)
        values[self.row_dim] = rd.start + i % self.row_len
        return values["a"], values["p"], values["d"]

    def index(self, a: int, p: int, d: int) -> int | None:
        """The number i < size with flow(i) == (a, p, d); None outside the space. A
        handshake partner on another host learns how far the sender has got from this."""
        values = {"a": a, "p": p, "d": d}
        offsets = {n: values[n] - self.dim(n).start for n in DIMS}
        if any(not 0 <= offsets[n] < self.dim(n).size for n in DIMS):
            return None
        first, second = self.outer_dims
        row = offsets[first] + self.dim(first).size * offsets[second]
        return row * self.row_len + offsets[self.row_dim]

    def flows(self, n: int) -> Iterator[tuple[int, int, int]]:
        for i in range(n):
            yield self.flow(i)

    def split(self, k: int) -> list[FlowSpace]:
        """Disjoint parts for k workers, cut along the largest dimension."""
        name = self.row_dim
        dim = self.dim(name)
        k = max(1, min(k, dim.size))
        return [replace(self, **{name: part}) for part in dim.split(k)]

    def to_json(self) -> dict[str, Any]:
        return {n: [self.dim(n).start, self.dim(n).size] for n in DIMS}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FlowSpace:
        return cls(**{n: Dim(int(data[n][0]), int(data[n][1])) for n in DIMS})
