"""Decode the agent's line protocol into typed samples (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class ProtocolError(ValueError):
    """A line from the agent that is not a well-formed hello or sample."""


@dataclass(frozen=True)
class Hello:
    agent: int
    netns_inode: int
    host: str
    kmsg: bool
    conntrack: bool
    hz: float


@dataclass(frozen=True)
class TableFullEvent:
    """A kernel 'table full in netns N, dropping packet' message from this target's netns."""

    kts_us: int
    message: str


@dataclass(frozen=True)
class Sample:
    """One telemetry tick from one target."""

    seq: int
    t: float  # wall-clock time on the target when sampled
    received: float  # wall-clock time on the orchestrator when read
    count: int
    max: int
    buckets: int
    stat: dict[str, int] = field(default_factory=dict)
    events: tuple[TableFullEvent, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "t": self.t, "received": self.received, "count": self.count,
            "max": self.max, "buckets": self.buckets, "stat": self.stat,
            "events": [{"kts_us": e.kts_us, "msg": e.message} for e in self.events],
        }


def decode_line(line: str | bytes, received: float) -> Hello | Sample:
    try:
        obj = json.loads(line)
        kind = obj["type"]
        if kind == "hello":
            return Hello(agent=int(obj["agent"]), netns_inode=int(obj["netns_inode"]),
                         host=str(obj["host"]), kmsg=bool(obj["kmsg"]),
                         conntrack=bool(obj.get("conntrack", True)), hz=float(obj["hz"]))
        if kind == "sample":
            return Sample(
                seq=int(obj["seq"]), t=float(obj["t"]), received=received,
                count=int(obj["count"] or 0), max=int(obj["max"] or 0),
                buckets=int(obj["buckets"] or 0),
                stat={str(k): int(v) for k, v in obj["stat"].items()},
                events=tuple(TableFullEvent(int(e["kts_us"]), str(e["msg"]))
                             for e in obj["events"]),
            )
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"malformed agent line: {str(line)[:120]!r}") from exc
    raise ProtocolError(f"unknown agent line type {kind!r}")
