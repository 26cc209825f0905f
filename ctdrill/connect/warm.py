"""Connections to the hosts a drill observes, opened while its apply play runs.

Opening a pool's telemetry streams costs one SSH handshake per host, and paramiko's
handshakes are CPU work in this process (about 0.1 s each on these cores): at 16
gateways that delayed the observation window by ~2 s. Started right after prepare,
the handshakes overlap the apply play (whose work is in Ansible's processes and on the
targets), and each stream then only starts its agent. The connections also exist
before any load can fill a table (docs/REAL-HOSTS.md: pre-opened sessions).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ctdrill.system.parallel import run_all
from ctdrill.targets.target import Target

if TYPE_CHECKING:
    from ctdrill.connect.ssh import SshConnector


class WarmConnections:
    """One connector per SSH target, connecting in the background. Other transports
    connect in no time and are left to the stream. `take` hands a connector over (its
    own lock makes a caller wait for a handshake still under way); `close` closes the
    ones never taken."""

    def __init__(self, targets: Sequence[Target]) -> None:
        ssh = [t for t in targets if t.transport == "ssh"]
        self._ready: dict[str, SshConnector] = _connectors(ssh) if ssh else {}
        self._lock = threading.Lock()

    def start(self) -> None:
        calls = [functools.partial(_connect, c) for c in self._ready.values()]
        if calls:
            threading.Thread(target=run_all, args=(calls,), daemon=True,
                             name="ctd-warm-connections").start()

    def take(self, name: str) -> SshConnector | None:
        """The host's connector, now the caller's to close; None if there is none."""
        with self._lock:
            return self._ready.pop(name, None)

    def close(self) -> None:
        with self._lock:
            left, self._ready = list(self._ready.values()), {}
        for conn in left:
            with contextlib.suppress(Exception):  # best effort: the run is ending
                conn.close()


def _connectors(targets: Sequence[Target]) -> dict[str, SshConnector]:
    """One unconnected connector per target (paramiko loads only when there is one)."""
    from ctdrill.connect.ssh import SshConnector

    return {t.name: SshConnector(t) for t in targets}


def _connect(conn: SshConnector) -> None:
    """Connect now; a failure is left for the stream, which connects again and says why
    in its own words (the table-full hint included)."""
    with contextlib.suppress(Exception):
        conn.transport()


@contextlib.contextmanager
def warm_connections(targets: Sequence[Target]) -> Iterator[WarmConnections]:
    """Connections opening in the background from here; the untaken closed at exit."""
    warm = WarmConnections(targets)
    warm.start()
    try:
        yield warm
    finally:
        warm.close()
