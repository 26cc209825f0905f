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
    slab: bool = False
    """Whether the agent could read the conntrack slab cache when it started (root)."""


@dataclass(frozen=True)
class TableFullEvent:
    """A kernel 'table full in netns N, dropping packet' message from this target's netns."""

    kts_us: int
    message: str


SLAB_FIELDS = ("active_objs", "num_objs", "objsize", "objperslab", "pagesperslab")


@dataclass(frozen=True)
class SlabInfo:
    """The kernel's nf_conntrack slab cache at one sample (/proc/slabinfo's line).

    Kernel-wide: every network namespace allocates its entries from this one cache, so
    hosts sharing a kernel show the same figures. `bytes` is num_objs x objsize: the
    memory the cache holds for conntrack objects, free slots in its slabs included
    (docs/METRICS.md says why not active_objs).
    """

    active_objs: int
    num_objs: int
    objsize: int
    objperslab: int
    pagesperslab: int

    @property
    def bytes(self) -> int:
        return self.num_objs * self.objsize

    def to_json(self) -> dict[str, int]:
        return {"active_objs": self.active_objs, "num_objs": self.num_objs,
                "objsize": self.objsize, "objperslab": self.objperslab,
                "pagesperslab": self.pagesperslab, "bytes": self.bytes}


def _slab(value: Any) -> SlabInfo | None:
    """A sample's `slab`: absent (an older agent) or null (unreadable) is None."""
    if value is None:
        return None
    return SlabInfo(*(int(value[f]) for f in SLAB_FIELDS))


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
    slab: SlabInfo | None = None
    """The conntrack slab cache (kernel-wide); None when the agent could not read it."""

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "t": self.t, "received": self.received, "count": self.count,
            "max": self.max, "buckets": self.buckets, "stat": self.stat,
            "events": [{"kts_us": e.kts_us, "msg": e.message} for e in self.events],
            "slab": None if self.slab is None else self.slab.to_json(),
        }


def decode_line(line: str | bytes, received: float) -> Hello | Sample:
    try:
        obj = json.loads(line)
        kind = obj["type"]
        if kind == "hello":
            return Hello(agent=int(obj["agent"]), netns_inode=int(obj["netns_inode"]),
                         host=str(obj["host"]), kmsg=bool(obj["kmsg"]),
                         conntrack=bool(obj.get("conntrack", True)), hz=float(obj["hz"]),
                         slab=bool(obj.get("slab", False)))
        if kind == "sample":
            return Sample(
                seq=int(obj["seq"]), t=float(obj["t"]), received=received,
                count=int(obj["count"] or 0), max=int(obj["max"] or 0),
                buckets=int(obj["buckets"] or 0),
                stat={str(k): int(v) for k, v in obj["stat"].items()},
                events=tuple(TableFullEvent(int(e["kts_us"]), str(e["msg"]))
                             for e in obj["events"]),
                slab=_slab(obj.get("slab")),
            )
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"malformed agent line: {str(line)[:120]!r}") from exc
    raise ProtocolError(f"unknown agent line type {kind!r}")
