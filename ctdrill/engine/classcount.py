"""Count one traffic class's conntrack entries on a host, once a second, in a thread.

Used by the bypass drill to show that a notracked class stops consuming entries while
everything else is still tracked. `conntrack -L` runs through the host's connector, so
any transport works (netns, local, ssh).
"""

from __future__ import annotations

import functools
import threading
import time

from ctdrill.connect import Connector, connector_for
from ctdrill.engine.classscope import class_scope
from ctdrill.errors import CtdrillError
from ctdrill.spec.models import ClassEntriesExpectation
from ctdrill.system.parallel import run_all
from ctdrill.targets.inventory import Inventory
from ctdrill.targets.target import Target

Key = tuple[str, str, int]


def count_argv(protocol: str, port: int) -> list[str]:
    """Entries whose original direction goes to `port` (conntrack prints one per line)."""
    return ["conntrack", "-L", "-p", protocol, "--dport", str(port)]


def count_entries(conn: Connector, protocol: str, port: int) -> int:
    out = conn.run(count_argv(protocol, port), check=False).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def class_hosts(e: ClassEntriesExpectation, inv: Inventory,
                pools: dict[str, list[str]]) -> list[Target]:
    """The hosts an expectation counts on: a host, a group's hosts, or a pool's."""
    if e.pool is not None:
        return [inv.target(h) for h in pools.get(e.pool, [])]
    assert e.host is not None
    return inv.select(e.host)


class ClassCounter:
    def __init__(self, exps: list[ClassEntriesExpectation], inv: Inventory,
                 pools: dict[str, list[str]] | None = None, period_s: float = 1.0) -> None:
        per_exp = {id(e): class_hosts(e, inv, pools or {}) for e in exps}
        self.scopes = {class_scope(e): [t.name for t in per_exp[id(e)]] for e in exps}
        self.hosts = {t.name: t for ts in per_exp.values() for t in ts}
        self.keys: list[Key] = list(dict.fromkeys(
            (t.name, e.protocol, e.port) for e in exps for t in per_exp[id(e)]))
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

    def _count_host(self, host: str) -> None:
        """One host's counts this period; a host that cannot be read misses the period
        (its verdict then says how few counts it has), the others go on."""
        for key in self.keys:
            if key[0] == host:
                try:
                    n = count_entries(self._conn(host), *key[1:])
                except CtdrillError:
                    return
                self.series[key].append((time.time(), n))

    def _run(self) -> None:
        """Each host counted on its own thread: a pool's gateways in one period."""
        hosts = list(dict.fromkeys(k[0] for k in self.keys))
        while not self._stop.is_set():
            run_all([functools.partial(self._count_host, h) for h in hosts])
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
