"""Count one traffic class's conntrack entries on a lab host, once a second, in a thread.

Used by the bypass drill to show that a notracked class stops consuming entries while
everything else is still tracked.
"""

from __future__ import annotations

import threading
import time

from ctdrill.errors import InvalidInput
from ctdrill.spec.models import ClassEntriesExpectation
from ctdrill.system.children import run_child
from ctdrill.targets.inventory import Inventory


def count_entries(netns: str, protocol: str, port: int) -> int:
    """Entries whose original direction goes to `port` (conntrack prints one per line)."""
    proc = run_child(["ip", "netns", "exec", netns, "conntrack", "-L", "-p", protocol,
                      "--dport", str(port)])
    return sum(1 for line in proc.stdout.splitlines() if line.strip())


class ClassCounter:
    def __init__(self, exps: list[ClassEntriesExpectation], inv: Inventory,
                 period_s: float = 1.0) -> None:
        self.keys: dict[tuple[str, str, int], str] = {}
        for e in exps:
            target = inv.target(e.host)
            if target.netns is None:
                raise InvalidInput(f"class_entries needs a lab namespace host, not {e.host}",
                                   "count entries on hosts with ctdrill_netns")
            self.keys[(e.host, e.protocol, e.port)] = target.netns
        self.series: dict[tuple[str, str, int], list[tuple[float, int]]] = {
            k: [] for k in self.keys}
        self.period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="ctd-classcount")

    def _run(self) -> None:
        while not self._stop.is_set():
            for (host, proto, port), netns in self.keys.items():
                self.series[(host, proto, port)].append(
                    (time.time(), count_entries(netns, proto, port)))
            self._stop.wait(self.period_s)

    def start(self) -> None:
        if self.keys:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
