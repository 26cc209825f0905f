"""Order client for the probe (stdlib only; runs in the client namespace).

Sends synthetic orders at a fixed rate, each on a NEW flow (a new TCP connection or a
new UDP socket, i.e. a new 5-tuple through the gateway), plus cancel/replace messages
on new flows, and logs one JSON line per message: when it was sent, when the ACK
arrived, how many attempts it took, whether it timed out. Execution reports (FILL)
arrive from the venue on new flows to the report port; each first receipt is logged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import time


def log(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class UdpOnce(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.lines: asyncio.Queue[str] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.lines.put_nowait(data.decode(errors="replace").strip())


async def exchange_tcp(host: str, port: int, msg: str, want_fill: bool,
                       timeout: float) -> tuple[float | None, float | None]:
    """One message on a new TCP connection; returns (ack time, fill time)."""
    deadline = time.monotonic() + timeout
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(msg.encode())
        await writer.drain()
        ack_t = fill_t = None
        while ack_t is None or (want_fill and fill_t is None):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            line = await asyncio.wait_for(reader.readline(), left)
            if not line:
                break
            if line.startswith(b"ACK"):
                ack_t = time.time()
            elif line.startswith(b"FILL"):
                fill_t = time.time()
        return ack_t, fill_t
    finally:
        writer.close()


async def exchange_udp(host: str, port: int, msg: str, want_fill: bool,
                       timeout: float) -> tuple[float | None, float | None]:
    """One message from a new UDP socket (new source port = new flow)."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(UdpOnce, remote_addr=(host, port),
                                                           family=socket.AF_INET)
    deadline = time.monotonic() + timeout
    try:
        transport.sendto(msg.encode())
        ack_t = fill_t = None
        while ack_t is None or (want_fill and fill_t is None):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = await asyncio.wait_for(proto.lines.get(), left)
            except TimeoutError:
                break
            if line.startswith("ACK"):
                ack_t = time.time()
            elif line.startswith("FILL"):
                fill_t = time.time()
        return ack_t, fill_t
    finally:
        transport.close()


async def message(a: argparse.Namespace, proto: str, oid: str, verb: str,
                  want_fill: bool) -> float | None:
    """Send with retries; log the record; return the ack time (None if it never came)."""
    first_sent = time.time()
    ack_t = fill_t = None
    attempts = 0
    port = a.tcp_port if proto == "tcp" else a.udp_port
    exchange = exchange_tcp if proto == "tcp" else exchange_udp
    flag = " F" if want_fill else ""
    while attempts <= a.retries and ack_t is None:
        attempts += 1
        try:
            ack_t, fill_t = await exchange(a.venue, port, f"{verb} {oid}{flag}\n", False,
                                           a.timeout)
        except (TimeoutError, OSError):
            ack_t = None
    log({"ev": "msg", "id": oid, "verb": verb, "proto": proto, "sent": first_sent,
         "acked": ack_t, "filled": fill_t, "want_fill": want_fill, "attempts": attempts,
         "timed_out": ack_t is None})
    return ack_t


async def order(a: argparse.Namespace, rng: random.Random, n: int, proto: str) -> None:
    oid = f"{proto[0]}{n}"
    want_fill = rng.random() < a.fill_ratio
    acked = await message(a, proto, oid, "NEW", want_fill)  # the fill comes as a report
    if acked is None:
        return
    r = rng.random()
    if r < a.cancel_ratio:
        await message(a, proto, oid, "CXL", False)
    elif r < a.cancel_ratio + a.replace_ratio:
        await message(a, proto, oid, "RPL", False)


class Reports(asyncio.DatagramProtocol):
    """Receives FILL reports; logs the first receipt of each."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        parts = data.decode(errors="replace").split()
        if len(parts) >= 2 and parts[0] == "FILL" and parts[1] not in self.seen:
            self.seen.add(parts[1])
            log({"ev": "fill", "id": parts[1], "t": time.time()})


async def run(a: argparse.Namespace) -> None:
    rng = random.Random(a.seed)
    loop = asyncio.get_running_loop()
    reports, _ = await loop.create_datagram_endpoint(Reports, local_addr=("0.0.0.0",
                                                                          a.report_port))
    protos = ["tcp", "udp"] if a.proto == "both" else [a.proto]
    period = 1.0 / a.rate
    start = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()
    n = 0
    log({"ev": "start", "t": time.time()})
    while time.monotonic() - start < a.duration:
        for proto in protos:
            task = asyncio.create_task(order(a, rng, n, proto))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        n += 1
        await asyncio.sleep(max(0.0, start + n * period - time.monotonic()))
    if tasks:
        await asyncio.wait(tasks, timeout=a.timeout * (a.retries + 1) * 2 + 1)
    await asyncio.sleep(a.report_grace)  # late reports still count
    reports.close()
    log({"ev": "end", "t": time.time(), "orders": n})


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--venue", required=True)
    p.add_argument("--tcp-port", type=int, default=9001)
    p.add_argument("--udp-port", type=int, default=9002)
    p.add_argument("--report-port", type=int, default=9003)
    p.add_argument("--report-grace", type=float, default=1.0)
    p.add_argument("--proto", choices=["tcp", "udp", "both"], default="tcp")
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--retries", type=int, default=2)
    p.add_argument("--fill-ratio", type=float, default=0.5)
    p.add_argument("--cancel-ratio", type=float, default=0.2)
    p.add_argument("--replace-ratio", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    try:
        asyncio.run(run(a))
    except (KeyboardInterrupt, BrokenPipeError):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
