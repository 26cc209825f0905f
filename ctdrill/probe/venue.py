"""Venue responder for the order-flow probe (stdlib only; runs in the venue namespace).

Accepts orders over TCP (one connection per message) and UDP (one datagram per
message), answers ACK at once and FILL after a short delay when asked, and logs its
ground truth (when it accepted what) as JSON lines on stdout.

Wire format, one line per message: `NEW <id> [F]`, `CXL <id>`, `RPL <id>`;
answers: `ACK <id>`, `FILL <id>`.
"""

from __future__ import annotations

import argparse
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


def handle(msg: str, send: object, fill_delay: float) -> None:
    parts = msg.split()
    if len(parts) < 2:
        return
    verb, oid = parts[0], parts[1]
    log({"ev": "accept", "id": oid, "verb": verb, "t": time.time()})
    send(f"ACK {oid}\n".encode())  # type: ignore[operator]
    if verb == "NEW" and "F" in parts[2:]:
        time.sleep(fill_delay)
        send(f"FILL {oid}\n".encode())  # type: ignore[operator]


def serve_tcp_conn(conn: socket.socket, fill_delay: float) -> None:
    with conn:
        conn.settimeout(10)
        try:
            data = b""
            while b"\n" not in data:
                chunk = conn.recv(256)
                if not chunk:
                    return
                data += chunk
            handle(data.split(b"\n", 1)[0].decode(errors="replace"), conn.sendall, fill_delay)
        except OSError:
            return


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--addr", default="0.0.0.0")
    p.add_argument("--tcp-port", type=int, default=9001)
    p.add_argument("--udp-port", type=int, default=9002)
    p.add_argument("--fill-delay-ms", type=float, default=5.0)
    a = p.parse_args()
    fill_delay = a.fill_delay_ms / 1000
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
                    conn, _peer = tcp.accept()
                    threading.Thread(target=serve_tcp_conn, args=(conn, fill_delay),
                                     daemon=True).start()
                else:
                    data, peer = udp.recvfrom(512)

                    def send(b: bytes, peer: tuple[str, int] = peer) -> None:
                        udp.sendto(b, peer)

                    threading.Thread(target=handle, args=(data.decode(errors="replace"), send,
                                                          fill_delay), daemon=True).start()
    except (KeyboardInterrupt, BrokenPipeError):
        return 0


if __name__ == "__main__":
    sys.exit(main())
