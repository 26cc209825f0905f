"""Venue responder for the order-flow probe (stdlib only; runs in the venue namespace).

Accepts orders over TCP (one connection per message) and UDP (one datagram per
message) and answers ACK at once. Orders that ask for a fill are filled a few ms later
and the execution report goes out like a drop copy: a `FILL <id>` datagram on a NEW
flow (fresh source port) to the client's report port, resent every `resend_ms` until
`resends` run out. Under conntrack pressure those new flows are dropped while the venue
already holds the order as filled: that gap is the order state skew the probe measures.
Ground truth (accept and first fill times) goes to stdout as JSON lines.

Wire format, one line per message: `NEW <id> [F]`, `CXL <id>`, `RPL <id>`; answers
`ACK <id>` on the same flow; reports `FILL <id>` on new flows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import selectors
import socket
import sys
import threading
import time

_lock = threading.Lock()


def log(obj: dict[str, object]) -> None:
    line = json.dumps(obj, separators=(",", ":")) + "\n"
    with _lock:
        sys.stdout.write(line)
        sys.stdout.flush()


class Reports:
    """Execution reports on new UDP flows to the client's report port, with resends."""

    def __init__(self, port: int, delay_s: float, resend_s: float, resends: int) -> None:
        self.port, self.delay_s, self.resend_s, self.resends = port, delay_s, resend_s, resends

    def fill(self, oid: str, client_addr: str) -> None:
        time.sleep(self.delay_s)
        log({"ev": "fill", "id": oid, "t": time.time()})
        for _ in range(self.resends + 1):
            # a new socket per send: a new 5-tuple through the gateway every time
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, \
                    contextlib.suppress(OSError):
                s.sendto(f"FILL {oid}\n".encode(), (client_addr, self.port))
            time.sleep(self.resend_s)


def handle(msg: str, send: object, peer_addr: str, reports: Reports) -> None:
    parts = msg.split()
    if len(parts) < 2:
        return
    verb, oid = parts[0], parts[1]
    log({"ev": "accept", "id": oid, "verb": verb, "t": time.time()})
    send(f"ACK {oid}\n".encode())  # type: ignore[operator]
    if verb == "NEW" and "F" in parts[2:]:
        reports.fill(oid, peer_addr)


def serve_tcp_conn(conn: socket.socket, peer_addr: str, reports: Reports) -> None:
    with conn:
        conn.settimeout(10)
        try:
            data = b""
            while b"\n" not in data:
                chunk = conn.recv(256)
                if not chunk:
                    return
                data += chunk
            handle(data.split(b"\n", 1)[0].decode(errors="replace"), conn.sendall, peer_addr,
                   reports)
        except OSError:
            return


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--addr", default="0.0.0.0")
    p.add_argument("--tcp-port", type=int, default=9001)
    p.add_argument("--udp-port", type=int, default=9002)
    p.add_argument("--report-port", type=int, default=9003)
    p.add_argument("--fill-delay-ms", type=float, default=5.0)
    p.add_argument("--resend-ms", type=float, default=250.0)
    p.add_argument("--resends", type=int, default=8)
    a = p.parse_args()
    reports = Reports(a.report_port, a.fill_delay_ms / 1000, a.resend_ms / 1000, a.resends)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((a.addr, a.tcp_port))
    tcp.listen(4096)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((a.addr, a.udp_port))
    sel = selectors.DefaultSelector()
    sel.register(tcp, selectors.EVENT_READ, "tcp")
    sel.register(udp, selectors.EVENT_READ, "udp")
    log({"ev": "ready", "t": time.time()})
    try:
        while True:
            for key, _ in sel.select():
                if key.data == "tcp":
                    conn, peer = tcp.accept()
                    threading.Thread(target=serve_tcp_conn, args=(conn, peer[0], reports),
                                     daemon=True).start()
                else:
                    data, peer = udp.recvfrom(512)

                    def send(b: bytes, peer: tuple[str, int] = peer) -> None:
                        udp.sendto(b, peer)

                    threading.Thread(target=handle, args=(data.decode(errors="replace"), send,
                                                          peer[0], reports),
                                     daemon=True).start()
    except (KeyboardInterrupt, BrokenPipeError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
