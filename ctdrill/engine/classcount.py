"""Count one traffic class's conntrack entries on a host, once a second, in a thread.

Used by the bypass drill to show that a notracked class stops consuming entries while
everything else is still tracked. `conntrack -L` runs through the host's connector, so
any transport works (netns, local, ssh).
"""

from __future__ import annotations

import threading
import time

from ctdrill.connect import Connector, connector_for
from ctdrill.spec.models import ClassEntriesExpectation
from ctdrill.targets.inventory import Inventory

Key = tuple[str, str, int]


def count_argv(protocol: str, port: int) -> list[str]:
    """Entries whose original direction goes to `port` (conntrack prints one per line)."""
    return ["conntrack", "-L", "-p", protocol, "--dport", str(port)]


def count_entries(conn: Connector, protocol: str, port: int) -> int:
    out = conn.run(count_argv(protocol, port), check=False).stdout
    return sum(1 for line in out.splitlines() if line.strip())


class ClassCounter:
    def __init__(self, exps: list[ClassEntriesExpectation], inv: Inventory,
                 period_s: float = 1.0) -> None:
        self.hosts = {e.host: inv.target(e.host) for e in exps}
        self.keys: list[Key] = list(dict.fromkeys((e.host, e.protocol, e.port) for e in exps))
        self.series: dict[Key, list[tuple[float, int]]] = {k: [] for k in self.keys}
        self.period_s = period_s
        self._conns: dict[str, Connector] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="ctd-classcount")

    def _conn(self, host: str) -> Connector:
        """One connector (one SSH client) per host for the whole count."""
        if host not in self._conns:
            self._conns[host] = connector_for(self.hosts[host])
        return self._conns[host]

    def _run(self) -> None:
        while not self._stop.is_set():
            for host, proto, port in self.keys:
                self.series[(host, proto, port)].append(
                    (time.time(), count_entries(self._conn(host), proto, port)))
            self._stop.wait(self.period_s)

    def start(self) -> None:
        if self.keys:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for conn in self._conns.values():
            conn.close()
