"""ASSURED handshakes split across two hosts: how far the other end has got.

Both ends generate the same flows in the same order (flowspace rows, frames.py), so
one number says everything: how many of this part's flows the other end has handled.
The venue's partner learns it from the SYNs it sees, the client from the SYN-ACKs; a
frame's tuple gives its flow's index in the space, and the count is the one that ends
at that index, no further back than the last count and less than one space ahead
(the client never has a whole space outstanding). Packets dropped on the way (a full
table) do not stall anything: the next frame that gets through moves the count past
them. Standard library only (shipped to remote hosts, connect/payload.py).
"""

from __future__ import annotations

import select

from ctdrill.surge.capture import Capture, Match
from ctdrill.surge.flowspace import Dim, FlowSpace

SYN, SYNACK = 0x02, 0x12


def _span(d: Dim) -> tuple[int, int]:
    return d.start, d.start + d.size - 1


def syn_matches(space: FlowSpace, peer: int) -> list[Match]:
    """The SYNs of one sender's part, as its partner at `peer` receives them."""
    return [Match("ip_dst", peer, peer), Match("tcp_flags", SYN, SYN),
            Match("ip_src", *_span(space.a)), Match("tcp_sport", *_span(space.p)),
            Match("tcp_dport", *_span(space.d))]


def synack_matches(space: FlowSpace, peer: int) -> list[Match]:
    """The SYN-ACKs for one sender's part, as the sender receives them from `peer`."""
    return [Match("ip_src", peer, peer), Match("tcp_flags", SYNACK, SYNACK),
            Match("ip_dst", *_span(space.a)), Match("tcp_dport", *_span(space.p)),
            Match("tcp_sport", *_span(space.d))]


def count_behind(sent: int, index: int, size: int) -> int:
    """The largest count <= sent whose last flow has `index` (client side)."""
    return sent - ((sent - index - 1) % size)


def count_ahead(handled: int, index: int, size: int, window: int) -> int:
    """The smallest count >= handled whose last flow has `index` (partner side); equal
    to `handled` when that flow is already handled, or when the count would move more
    than `window` ahead: the sender is never that far ahead, so the frame is an older
    flow overtaken on the way (RSS spreads flows across queues) and says nothing new."""
    ahead = (index + 1 - handled) % size
    return handled + ahead if ahead <= window else handled


class Replies:
    """The client's view: flows answered so far (SYN-ACKs seen) in the current phase,
    from a capture that admits only this sender's part (so the last frame says it)."""

    def __init__(self, ifname: str, peer: int) -> None:
        self.ifname, self.peer = ifname, peer
        self.capture: Capture | None = None
        self.space: FlowSpace | None = None
        self.answered = 0

    def start(self, space: FlowSpace) -> None:
        self.close()
        self.capture = Capture(self.ifname, synack_matches(space, self.peer))
        self.space = space
        self.answered = 0

    def advance(self, sent: int) -> int:
        """Read every SYN-ACK queued now; the answered count (never past `sent`)."""
        assert self.capture is not None and self.space is not None
        last = self.capture.last()
        if last is not None:
            _src, dst, sport, dport = last
            index = self.space.index(dst, dport, sport)
            if index is not None:
                self.answered = max(self.answered, count_behind(sent, index, self.space.size))
        return self.answered

    def wait(self, timeout: float) -> None:
        """Block until a reply is queued or `timeout` s pass."""
        assert self.capture is not None
        select.select([self.capture], [], [], timeout)

    def close(self) -> None:
        if self.capture is not None:
            self.capture.close()
            self.capture = None
